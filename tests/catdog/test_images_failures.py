"""Any decoder failure is that one file's problem: a reason, never an exception, never a crash.

Pillow identifies a file by its content, whatever its suffix, and each of its plugins fails in
its own way on odd data. The fuzz test at the end feeds decoding a few hundred mutated files of
every format the data set may hold and asks only that each gives pixels or a reason.
"""

import os
import struct
import warnings

import numpy as np
import pytest
from PIL import Image, ImageFile

import catdog.images as images
from catdog.cache import read_split
from catdog.images import ImageDecodeError, decode_image, decode_or_reason
from tests.bad_images import (
    EXIF_ORIENTATION,
    close_colour,
    dds_texture,
    image_bytes,
    jpeg_bytes,
    make_unreadable,
    noise_image,
    odd_exif_rotated_jpeg,
    tiff_ifd,
    write_file,
)

SIZE = 64


def test_a_texture_renamed_jpg_is_refused_with_the_reason(tmp_path):
    path = write_file(tmp_path, "texture.jpg", dds_texture())
    with pytest.raises(ImageDecodeError) as raised:
        decode_image(path, SIZE)
    assert str(raised.value) == "cannot be decoded (Unimplemented pixel format 1145258561)"


def test_odd_camera_exif_keeps_the_rotation_it_asks_for(tmp_path):
    # Stored 40x20, red left and blue right; EXIF says turn it 90 degrees clockwise.
    pixels = decode_image(write_file(tmp_path, "odd_exif.jpg", odd_exif_rotated_jpeg()), SIZE)
    assert close_colour(pixels[8, 32], (255, 0, 0))  # shown portrait: red on top
    assert close_colour(pixels[56, 32], (0, 0, 255))


# A Pillow plugin, registered for these tests, that raises what a file tells it to: the errors
# real plugins raise on odd data, at either stage (identifying the file, decoding its pixels).
ERRORS = {
    "NotImplementedError": NotImplementedError("Unimplemented pixel format"),
    "AttributeError": AttributeError("'IFDRational' object has no attribute 'encode'"),
    "struct.error": struct.error("unpack requires a buffer of 4 bytes"),
    "TypeError": TypeError("'IFDRational' object cannot be interpreted as an integer"),
    "ValueError": ValueError("negative seek value -20173"),
    "SyntaxError": SyntaxError("broken PNG file\nin chunk IDAT"),  # a reason is one line
    "IndexError": IndexError("list index out of range"),
    "KeyError": KeyError(33),
    "ZeroDivisionError": ZeroDivisionError("division by zero"),
    "OverflowError": OverflowError("Python int too large to convert to C long"),
    "RecursionError": RecursionError("maximum recursion depth exceeded"),
    "DecompressionBombError": Image.DecompressionBombError("Image size exceeds limit"),
    "RuntimeError": RuntimeError(""),  # no message: the reason names the error
    "MemoryError": MemoryError(),
    "KeyboardInterrupt": KeyboardInterrupt(),
}
MAGIC = b"FAILING "


class _FailingImage(ImageFile.ImageFile):
    format = "FAILING"

    def _open(self):
        stage, name = self.fp.read(64)[len(MAGIC) :].decode().split()
        self._raise = ERRORS[name]
        if stage == "open":
            raise self._raise
        self._mode, self._size = "RGB", (8, 8)

    def load(self):
        raise self._raise


@pytest.fixture
def failing_plugin():
    Image.register_open(_FailingImage.format, _FailingImage, lambda prefix: prefix[:8] == MAGIC)
    yield
    Image.OPEN.pop(_FailingImage.format)
    Image.ID.remove(_FailingImage.format)


def _failing(tmp_path, stage: str, name: str):
    return write_file(tmp_path, f"{stage}-{name}.jpg", MAGIC + f"{stage} {name}".encode())


FILE_ERRORS = [name for name in ERRORS if name not in ("MemoryError", "KeyboardInterrupt")]


@pytest.mark.parametrize("stage", ["open", "load"])
@pytest.mark.parametrize("name", FILE_ERRORS)
def test_whatever_a_plugin_raises_becomes_a_one_line_reason(tmp_path, failing_plugin, stage, name):
    path = _failing(tmp_path, stage, name)
    with pytest.raises(ImageDecodeError) as raised:
        decode_image(path, SIZE)
    reason = str(raised.value)
    assert "\n" not in reason
    assert reason.startswith(("cannot be decoded (", "not an image Pillow can read", "too large"))
    if name == "RuntimeError":
        assert reason == "cannot be decoded (RuntimeError)"


@pytest.mark.parametrize("name", ["MemoryError", "KeyboardInterrupt"])
def test_memory_and_interrupts_are_not_a_file_s_problem(tmp_path, failing_plugin, name):
    path = _failing(tmp_path, "load", name)
    with pytest.raises(type(ERRORS[name])):
        decode_image(path, SIZE)
    split = tmp_path / "training_set"
    for folder in ("cats", "dogs"):
        (split / folder).mkdir(parents=True)
        write_file(split / folder, "good.jpg", jpeg_bytes(noise_image()))
    path.rename(split / "dogs" / path.name)
    with pytest.raises(type(ERRORS[name])):  # also out of the pool of decoding threads
        read_split(split, SIZE, None, warn=False)


def test_a_failure_in_a_decoding_thread_skips_that_file_only(tmp_path, failing_plugin):
    split = tmp_path / "training_set"
    for folder in ("cats", "dogs"):
        (split / folder).mkdir(parents=True)
        for index in range(3):
            write_file(split / folder, f"good.{index}.jpg", jpeg_bytes(noise_image(seed=index)))
    write_file(split / "cats", "odd_exif.jpg", odd_exif_rotated_jpeg())
    bad = [_failing(split / "dogs", "load", name) for name in FILE_ERRORS]
    bad.append(write_file(split / "cats", "texture.jpg", dds_texture()))
    image_set = read_split(split, SIZE, tmp_path / "cache", warn=False)
    assert len(image_set) == 7
    assert sorted(s.path for s in image_set.skipped) == sorted(bad)


@pytest.mark.parametrize("simulated", [False, True], ids=["chmod 000", "simulated"])
def test_a_file_that_cannot_be_read_is_refused_with_the_reason(tmp_path, monkeypatch, simulated):
    path = write_file(tmp_path, "locked.jpg", jpeg_bytes(noise_image()))
    make_unreadable(path, monkeypatch, simulated=simulated)
    assert decode_or_reason(path, SIZE) == "cannot be read (Permission denied)"


def test_what_is_not_a_readable_file_is_refused_with_what_it_is(tmp_path):
    (tmp_path / "gone.jpg").symlink_to("missing.jpg")
    (tmp_path / "loop.jpg").symlink_to("loop.jpg")
    os.mkfifo(tmp_path / "pipe.jpg")  # opening it plainly would wait for a writer forever
    (tmp_path / "folder.jpg").mkdir()
    reasons = {
        name: decode_or_reason(tmp_path / name, SIZE)
        for name in ("gone.jpg", "loop.jpg", "pipe.jpg", "folder.jpg", "absent.jpg")
    }
    assert reasons == {
        "gone.jpg": "a link to missing.jpg, which does not exist",
        "loop.jpg": "a link to loop.jpg, which cannot be followed "
        "(Too many levels of symbolic links)",
        "pipe.jpg": "a named pipe",
        "folder.jpg": "a folder",
        "absent.jpg": "no such file",
    }


# --- Fuzzing: mutated files of every format, seeded, a few hundred of them in seconds. --------

FUZZ_SEED = 22
MUTATED_PER_FORMAT = 40
RANDOM_EXIF_CASES = 150
TIFF_TYPE_BYTES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
# Orientation, Make, Model, DateTime, XResolution, ResolutionUnit, the EXIF and GPS sub-blocks,
# Software, YCbCrPositioning, PixelXDimension: what cameras write.
EXIF_TAGS = [EXIF_ORIENTATION, 0x010F, 0x0110, 0x0132, 0x011A, 0x0128, 0x8769, 0x8825]
EXIF_TAGS += [0x0131, 0x0213, 0xA002]
# Headers of formats Pillow also knows by content: DDS, PSD, ICNS, ICO, TIFF, BMP, GIF, PPM.
HEADERS = [b"DDS ", b"8BPS", b"icns", b"\0\0\1\0", b"II*\0", b"MM\0*", b"BM", b"GIF89a", b"P6\n"]


def _seed_files() -> dict[str, bytes]:
    picture = noise_image(24, 16)
    exif = tiff_ifd([(EXIF_ORIENTATION, 3, 1, struct.pack("<H", 6)), (0x010F, 2, 7, b"Camera\0")])
    frames = [picture.convert("P"), picture.convert("L").convert("P")]
    return {
        "jpeg": jpeg_bytes(picture, exif=b"Exif\0\0" + exif),
        "png": image_bytes(frames[0], "PNG", transparency=0),
        "gif": image_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        "webp": image_bytes(picture, "WEBP", exif=exif),
        "tiff": image_bytes(picture, "TIFF", compression="tiff_lzw"),
        "bmp": image_bytes(picture, "BMP"),
    }


def _mutated(content: bytes, rng: np.random.Generator) -> bytes:
    """1 to 3 mutations: bytes changed, the end cut, a slice repeated, an extreme number, small
    numbers in the metadata near the start (field types, counts), another format's header."""
    data = bytearray(content)
    for _ in range(rng.integers(1, 4)):
        at = int(rng.integers(0, len(data)))
        kind = rng.integers(0, 6)
        if kind == 0:
            for _ in range(rng.integers(1, 8)):
                data[rng.integers(0, len(data))] = rng.integers(0, 256)
        elif kind == 1:
            data = data[: max(at, 1)]
        elif kind == 2:
            data[at:at] = data[at : at + int(rng.integers(1, 64))]
        elif kind == 3:
            data[at : at + 4] = rng.choice([b"\xff" * 4, b"\0" * 4, b"\x7f\xff\xff\xff"])
        elif kind == 4:
            data[rng.integers(0, min(len(data), 160))] = rng.integers(0, 13)
        else:
            header = HEADERS[rng.integers(0, len(HEADERS))]
            data[: len(header)] = header
    return bytes(data)


def _random_exif(rng: np.random.Generator) -> bytes:
    """An EXIF block of camera tags, each stored with a random type and count (as odd cameras
    and editors do), and always an Orientation."""
    tags = {EXIF_ORIENTATION} | {int(tag) for tag in rng.choice(EXIF_TAGS, rng.integers(1, 6))}
    entries = []
    for tag in tags:
        kind, count = int(rng.integers(1, 13)), int(rng.integers(0, 4))
        value = rng.integers(0, 256, TIFF_TYPE_BYTES[kind] * count, dtype=np.uint8).tobytes()
        if tag == EXIF_ORIENTATION and rng.random() < 0.5:
            kind, count, value = 3, 1, struct.pack("<H", int(rng.integers(1, 9)))
        entries.append((tag, kind, count, value))
    return tiff_ifd(entries)


def _fuzz_cases():
    rng = np.random.default_rng(FUZZ_SEED)
    seeds = _seed_files()
    for name, content in seeds.items():
        for index in range(MUTATED_PER_FORMAT):
            yield f"{name} mutation {index}", _mutated(content, rng)
    picture = noise_image(24, 16)
    for index in range(RANDOM_EXIF_CASES):
        exif = _random_exif(rng)
        name = ("jpeg", "png", "webp")[index % 3]
        if name == "jpeg":
            content = jpeg_bytes(picture, exif=b"Exif\0\0" + exif)
        else:
            content = image_bytes(picture, name.upper(), exif=exif)
        yield f"{name} exif {index}", content


def test_fuzzed_files_give_pixels_or_a_reason_never_an_exception(tmp_path, monkeypatch):
    # A mutated header may declare a big picture: refuse those early, so this takes seconds.
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 1_000_000)
    path = tmp_path / "fuzzed.jpg"
    outcomes, escaped = {"pixels": 0, "reason": 0}, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about much of what it reads here
        for case, content in _fuzz_cases():
            path.write_bytes(content)
            try:
                result = decode_or_reason(path, SIZE)
            except Exception as error:
                escaped.append(f"{case}: {type(error).__name__}: {error}")
                continue
            if isinstance(result, str):
                assert result and "\n" not in result, case
                outcomes["reason"] += 1
            else:
                assert result.shape == (SIZE, SIZE, 3) and result.dtype == np.uint8, case
                outcomes["pixels"] += 1
    assert escaped == []
    assert outcomes["pixels"] > 50 and outcomes["reason"] > 50  # both ways were exercised
