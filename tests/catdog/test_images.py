import numpy as np
import pytest
from PIL import Image

from catdog.images import ImageDecodeError, decode_image, stored_size
from tests.bad_images import (
    cmyk_jpeg,
    exif_rotated_jpeg,
    grayscale_jpeg,
    huge_png_header,
    palette_png_with_transparency,
    truncated_jpeg,
)

SIZE = 64


def _file(tmp_path, name, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _close(pixel, colour, tolerance=12) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.array(colour)) <= tolerance))


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    pixels = decode_image(_file(tmp_path, "cmyk.jpg", cmyk_jpeg()), SIZE)
    assert pixels.shape == (SIZE, SIZE, 3) and pixels.dtype == np.uint8
    assert _close(pixels[32, 32], (255, 0, 0))


def test_grayscale_becomes_three_equal_channels(tmp_path):
    pixels = decode_image(_file(tmp_path, "gray.jpg", grayscale_jpeg()), SIZE)
    assert pixels.shape == (SIZE, SIZE, 3)
    assert _close(pixels[32, 32], (100, 100, 100), tolerance=2)


def test_transparent_palette_pixels_become_white(tmp_path):
    pixels = decode_image(_file(tmp_path, "palette.png", palette_png_with_transparency()), SIZE)
    assert _close(pixels[32, 5], (255, 255, 255), tolerance=0)  # transparent black -> white
    assert _close(pixels[32, 58], (0, 0, 255), tolerance=0)  # opaque blue stays blue


def test_exif_orientation_is_applied(tmp_path):
    path = _file(tmp_path, "rotated.jpg", exif_rotated_jpeg())
    assert stored_size(path) == (40, 20)  # stored landscape, red left, blue right
    pixels = decode_image(path, SIZE)
    assert _close(pixels[8, 32], (255, 0, 0), tolerance=40)  # shown portrait: red on top
    assert _close(pixels[56, 32], (0, 0, 255), tolerance=40)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (truncated_jpeg(), "cannot be decoded (image file is truncated"),
        (b"<html>not found</html>", "not an image Pillow can read"),
        (huge_png_header(30_000, 30_000), "too large"),  # refused by Pillow's own limit
        (huge_png_header(9_000, 9_000), "too large (9000x9000 pixels, limit 64,000,000)"),
    ],
)
def test_unusable_files_are_refused_with_the_reason(tmp_path, content, reason):
    path = _file(tmp_path, "bad.png", content)
    with pytest.raises(ImageDecodeError) as raised:
        decode_image(path, SIZE)
    assert str(raised.value).startswith(reason)


def test_a_huge_header_is_refused_without_decoding(tmp_path, monkeypatch):
    path = _file(tmp_path, "huge.png", huge_png_header(9_000, 9_000))
    monkeypatch.setattr(Image.Image, "load", _fail_if_called)
    with pytest.raises(ImageDecodeError, match="too large"):
        decode_image(path, SIZE)


def _fail_if_called(*_args, **_kwargs):
    raise AssertionError("the pixels of a refused image must not be loaded")
