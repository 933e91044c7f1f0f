import numpy as np
import pytest
from PIL import Image

from catdog.images import ImageDecodeError, _to_rgb, decode_image, stored_size
from tests.bad_images import (
    close_colour,
    cmyk_jpeg,
    exif_rotated_jpeg,
    grayscale_jpeg,
    halves,
    huge_png_header,
    image_bytes,
    image_in_mode,
    palette_png_with_transparency,
    png_bytes,
    tiff_bytes,
    truncated_jpeg,
    write_file,
)

SIZE = 64


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    pixels = decode_image(write_file(tmp_path, "cmyk.jpg", cmyk_jpeg()), SIZE)
    assert pixels.shape == (SIZE, SIZE, 3) and pixels.dtype == np.uint8
    assert close_colour(pixels[32, 32], (255, 0, 0))


def test_grayscale_becomes_three_equal_channels(tmp_path):
    pixels = decode_image(write_file(tmp_path, "gray.jpg", grayscale_jpeg()), SIZE)
    assert pixels.shape == (SIZE, SIZE, 3)
    assert close_colour(pixels[32, 32], (100, 100, 100), tolerance=2)


def test_transparent_palette_pixels_become_white(tmp_path):
    path = write_file(tmp_path, "palette.png", palette_png_with_transparency())
    pixels = decode_image(path, SIZE)
    assert close_colour(pixels[32, 5], (255, 255, 255), tolerance=0)  # transparent black -> white
    assert close_colour(pixels[32, 58], (0, 0, 255), tolerance=0)  # opaque blue stays blue


def test_exif_orientation_is_applied(tmp_path):
    path = write_file(tmp_path, "rotated.jpg", exif_rotated_jpeg())
    assert stored_size(path) == (40, 20)  # stored landscape, red left, blue right
    pixels = decode_image(path, SIZE)
    assert close_colour(pixels[8, 32], (255, 0, 0), tolerance=40)  # shown portrait: red on top
    assert close_colour(pixels[56, 32], (0, 0, 255), tolerance=40)


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
    path = write_file(tmp_path, "bad.png", content)
    with pytest.raises(ImageDecodeError) as raised:
        decode_image(path, SIZE)
    assert str(raised.value).startswith(reason)


def test_a_huge_header_is_refused_without_decoding(tmp_path, monkeypatch):
    path = write_file(tmp_path, "huge.png", huge_png_header(9_000, 9_000))
    monkeypatch.setattr(Image.Image, "load", _fail_if_called)
    with pytest.raises(ImageDecodeError, match="too large"):
        decode_image(path, SIZE)


def _fail_if_called(*_args, **_kwargs):
    raise AssertionError("the pixels of a refused image must not be loaded")


# Every mode Pillow opens, in a file format that keeps it: (file, left half, right half) as
# decoded, RGB. Halves of 8192 and 49152 in 16 bits are 1/8 and 3/4 of the range: 32 and 192,
# the high byte, exactly what the same picture saved at 8 bits holds.
GREY_16 = halves(8192, 49152, np.uint16)
WHITE, BLACK, RED, BLUE = (255, 255, 255), (0, 0, 0), (255, 0, 0), (0, 0, 255)
MODE_FILES = {
    "1 png": (image_bytes(Image.fromarray(halves(False, True)), "PNG"), BLACK, WHITE),
    "L png": (
        image_bytes(Image.fromarray(halves(32, 192, np.uint8)), "PNG"),
        (32,) * 3,
        (192,) * 3,
    ),
    "L 2-bit png": (png_bytes(halves(1, 2, np.uint8), 2, 0), (85,) * 3, (170,) * 3),
    "LA png": (
        image_bytes(Image.fromarray(halves([0, 128], [192, 255], np.uint8)), "PNG"),
        (127,) * 3,  # black at half opacity over white
        (192,) * 3,
    ),
    "La tiff (premultiplied)": (
        tiff_bytes(halves([100, 128], [200, 255], np.uint8), 8, 1, extra_samples=(1,)),
        (227,) * 3,  # 100 + (1 - 128/255) * 255
        (200,) * 3,
    ),
    "P gif, first of two frames": (None, RED, BLUE),  # written by _two_frame_gif
    "PA tiff": (None, RED, WHITE),  # written by _palette_alpha_tiff
    "RGB png": (image_bytes(Image.fromarray(halves(RED, BLUE, np.uint8)), "PNG"), RED, BLUE),
    "RGB 16-bit png": (
        png_bytes(halves([8192, 0, 65535], [49152, 65535, 0], np.uint16), 16, 2),
        (32, 0, 255),
        (192, 255, 0),
    ),
    "RGBA png": (
        image_bytes(Image.fromarray(halves([255, 0, 0, 255], [0, 0, 255, 0], np.uint8)), "PNG"),
        RED,
        WHITE,  # transparent
    ),
    "RGBA 16-bit png": (
        png_bytes(halves([8192, 0, 65535, 65535], [0, 0, 0, 0], np.uint16), 16, 6),
        (32, 0, 255),
        WHITE,
    ),
    "RGBA tiff, premultiplied (RGBa) alpha": (
        tiff_bytes(halves([100, 0, 0, 128], [0, 0, 255, 255], np.uint8), 8, 2, extra_samples=(1,)),
        (227, 127, 127),
        BLUE,
    ),
    "CMYK tiff": (
        image_bytes(
            image_in_mode("CMYK", halves([0, 255, 255, 0], [0, 0, 0, 255], np.uint8)), "TIFF"
        ),
        RED,
        BLACK,
    ),
    "YCbCr tiff": (None, (254, 0, 0), (128, 128, 128)),  # written by _ycbcr_tiff
    "LAB tiff": (None, (251, 5, 4), (254, 255, 254)),  # D50 red and white; by _lab_tiff
    "I;16 png": (image_bytes(Image.fromarray(GREY_16), "PNG"), (32,) * 3, (192,) * 3),
    "I;16 png, key 8192": (
        png_bytes(GREY_16, 16, 0, trns=(8192).to_bytes(2, "big")),
        WHITE,  # transparent, matched on the 16-bit samples
        (192,) * 3,
    ),
    "I;16 tiff": (image_bytes(Image.fromarray(GREY_16), "TIFF"), (32,) * 3, (192,) * 3),
    "I;16B tiff": (
        image_bytes(Image.fromarray(GREY_16.astype(">u2")), "TIFF"),
        (32,) * 3,
        (192,) * 3,
    ),
    "I;16 tiff, lzw (libtiff)": (
        image_bytes(Image.fromarray(GREY_16), "TIFF", compression="tiff_lzw"),
        (32,) * 3,
        (192,) * 3,
    ),
    "I;16 12-bit tiff": (tiff_bytes(halves(512, 3072, np.uint16), 12, 1), (32,) * 3, (192,) * 3),
    "I 16-bit pgm": (
        b"P5 40 30 65535\n" + GREY_16.astype(">u2").tobytes(),
        (32,) * 3,
        (192,) * 3,
    ),
    "I 12-bit pgm (maxval 4095)": (
        b"P5 40 30 4095\n" + halves(1024, 3072, ">u2").tobytes(),
        (64,) * 3,
        (192,) * 3,
    ),
    "I signed 16-bit tiff": (
        tiff_bytes(halves(4096, 24576, np.int16), 16, 1, sample_format=2),
        (32,) * 3,
        (192,) * 3,
    ),
    "I signed 32-bit tiff": (
        image_bytes(Image.fromarray(halves(2**28, 3 * 2**29, np.int32)), "TIFF"),
        (32,) * 3,
        (192,) * 3,
    ),
    "I unsigned 32-bit tiff": (
        tiff_bytes(halves(2**29, 3 * 2**30, np.uint32), 32, 1),
        (32,) * 3,
        (192,) * 3,
    ),
    "F tiff": (
        image_bytes(Image.fromarray(halves(0.125, 0.75, np.float32)), "TIFF"),
        (32,) * 3,
        (192,) * 3,
    ),
    "F tiff, 0 and 1": (
        image_bytes(Image.fromarray(halves(0.0, 1.0, np.float32)), "TIFF"),
        BLACK,
        WHITE,
    ),
    "F pfm": (b"Pf\n40 30\n-1.0\n" + halves(0.125, 0.75, "<f4").tobytes(), (32,) * 3, (192,) * 3),
}
TOLERANCE = {"LA png": 1, "La tiff (premultiplied)": 2, "RGBA tiff, premultiplied (RGBa) alpha": 2}
TOLERANCE |= {"YCbCr tiff": 2, "LAB tiff": 6}


def _two_frame_gif() -> bytes:
    frames = [Image.new("P", (40, 30), 0) for _ in range(2)]
    for frame in frames:
        frame.putpalette([*RED, *BLUE, *WHITE])
    frames[0].paste(1, (20, 0, 40, 30))
    frames[1].paste(2, (0, 0, 40, 30))  # all white
    return image_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:])


def _palette_alpha_tiff() -> bytes:
    image = image_in_mode("PA", halves([0, 255], [1, 0], np.uint8))  # red opaque, blue transparent
    image.putpalette([*RED, *BLUE])
    return image_bytes(image, "TIFF")


def _ycbcr_tiff() -> bytes:
    pixels = halves([76, 85, 255], [128, 128, 128], np.uint8)  # JFIF red, mid grey
    return image_bytes(image_in_mode("YCbCr", pixels), "TIFF")


def _lab_tiff() -> bytes:
    # TIFF CIELab: L* scaled to 0..255, a* and b* signed bytes; D50 red is (54.29, 80.80, 69.89).
    # Written by hand: Pillow writes a* and b* offset by 128 (its in-memory LAB) instead.
    return tiff_bytes(halves([138, 81, 70], [255, 0, 0], np.uint8), 8, 8)


WRITERS = {
    "P gif, first of two frames": _two_frame_gif,
    "PA tiff": _palette_alpha_tiff,
    "YCbCr tiff": _ycbcr_tiff,
    "LAB tiff": _lab_tiff,
}


@pytest.mark.parametrize("case", list(MODE_FILES))
def test_every_mode_decodes_to_its_8_bit_rgb(tmp_path, case):
    content, left, right = MODE_FILES[case]
    path = write_file(tmp_path, "image", content if content is not None else WRITERS[case]())
    with Image.open(path) as image:
        assert image.mode == case.split()[0]  # the file really opens in the mode named
    pixels = decode_image(path, SIZE)
    assert pixels.shape == (SIZE, SIZE, 3) and pixels.dtype == np.uint8
    tolerance = TOLERANCE.get(case, 0)
    assert close_colour(pixels[32, 5], left, tolerance), pixels[32, 5]
    assert close_colour(pixels[32, 58], right, tolerance), pixels[32, 58]


# Modes no file format opens in (HSV), or that Pillow makes only in memory (I;16L, I;16N).
MEMORY_IMAGES = {
    "HSV": (
        image_in_mode("HSV", halves([0, 255, 255], [170, 255, 255], np.uint8)),
        RED,
        BLUE,
    ),
    "I;16L": (
        image_in_mode("I;16L", GREY_16.astype("<u2")),
        (32,) * 3,
        (192,) * 3,
    ),
    "I;16N": (image_in_mode("I;16N", GREY_16), (32,) * 3, (192,) * 3),
    "La": (
        image_in_mode("La", halves([100, 128], [200, 255], np.uint8)),
        (227,) * 3,
        (200,) * 3,
    ),
    "RGBa": (
        image_in_mode("RGBa", halves([100, 0, 0, 128], [0, 0, 255, 255], np.uint8)),
        (227, 127, 127),
        BLUE,
    ),
}


@pytest.mark.parametrize("mode", list(MEMORY_IMAGES))
def test_modes_made_in_memory_become_8_bit_rgb(mode):
    image, left, right = MEMORY_IMAGES[mode]
    assert image.mode == mode
    rgb = np.asarray(_to_rgb(image))
    assert close_colour(rgb[15, 5], left, tolerance=2), rgb[15, 5]
    assert close_colour(rgb[15, 35], right, tolerance=2), rgb[15, 35]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            image_bytes(Image.fromarray(halves(0.0, 4.0, np.float32)), "TIFF"),
            "floating-point samples 0..4: only 0..1 (black..white) has a known meaning",
        ),
        (
            image_bytes(Image.fromarray(halves(0.5, np.nan, np.float32)), "TIFF"),
            "floating-point samples that are NaN or infinite",
        ),
        (
            tiff_bytes(halves(-5, 24576, np.int16), 16, 1, sample_format=2),
            "signed 16-bit samples down to -5: below 0 (black) has no 8-bit level",
        ),
        (
            png_bytes(halves(10, 200, np.uint16), 16, 0),  # 8-bit values in a 16-bit file
            "16-bit samples 10..200 of 0..65535 all fall in the lowest 8-bit level",
        ),
        (
            image_bytes(Image.fromarray(halves(0.001, 0.003, np.float32)), "TIFF"),
            "floating-point samples 0.001..0.003 of 0..1 all fall in the lowest 8-bit level",
        ),
        (
            png_bytes(halves([8192] * 3, [49152] * 3, np.uint16), 16, 2, trns=bytes(6)),
            "16-bit colour with a transparent key colour, which cannot be matched",
        ),
    ],
    ids=["F hdr", "F nan", "I negative", "I;16 black", "F black", "RGB 16-bit key"],
)
def test_samples_without_a_faithful_8_bit_level_are_refused(tmp_path, content, reason):
    path = write_file(tmp_path, "image", content)
    with pytest.raises(ImageDecodeError) as raised:
        decode_image(path, SIZE)
    assert str(raised.value).startswith(reason)


def test_float_rounding_noise_just_outside_0_to_1_is_clipped(tmp_path):
    content = image_bytes(Image.fromarray(halves(-0.001, 1.001, np.float32)), "TIFF")
    pixels = decode_image(write_file(tmp_path, "noise.tif", content), SIZE)
    assert close_colour(pixels[32, 5], BLACK, 0) and close_colour(pixels[32, 58], WHITE, 0)


def test_a_key_of_low_bit_grey_makes_its_pixels_transparent(tmp_path):
    # Pillow scales 2-bit samples to 0..255 (1 -> 85) but leaves the tRNS key at 1.
    content = png_bytes(halves(1, 2, np.uint8), 2, 0, trns=(1).to_bytes(2, "big"))
    pixels = decode_image(write_file(tmp_path, "key.png", content), SIZE)
    assert close_colour(pixels[32, 5], WHITE, 0) and close_colour(pixels[32, 58], (170,) * 3, 0)


def test_a_nearly_flat_deep_picture_that_is_not_black_decodes_as_it_is(tmp_path):
    content = png_bytes(halves(65300, 65535, np.uint16), 16, 0)  # a white wall, 16 bits
    pixels = decode_image(write_file(tmp_path, "wall.png", content), SIZE)
    assert close_colour(pixels[32, 5], WHITE, 0) and close_colour(pixels[32, 58], WHITE, 0)
