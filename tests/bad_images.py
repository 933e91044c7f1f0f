"""Files with the surprises real photo folders hold, written by the tests themselves."""

from __future__ import annotations

import errno
import os
import struct
import zlib
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catdog.names import printable

EXIF_ORIENTATION = 0x0112
ROTATE_90_CLOCKWISE = 6  # EXIF: the stored pixels must be turned 90 degrees clockwise to show


def write_file(folder: Path, name: str, content: bytes) -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


def close_colour(pixel: np.ndarray, colour, tolerance: int = 12) -> bool:
    """True when every channel of `pixel` is within `tolerance` levels of `colour`."""
    return bool(np.all(np.abs(pixel.astype(int) - np.array(colour)) <= tolerance))


def make_unreadable(path: Path, monkeypatch: pytest.MonkeyPatch, *, simulated: bool) -> None:
    """Make the file or folder `path` unreadable to this user: chmod 000, or (simulated) the
    operating system refusing to open or list it, as it refuses a user without permission.

    Root reads and lists anything (CI runs as root): there chmod 000 skips the test, and only
    the simulated case runs.
    """
    if not simulated:
        path.chmod(0)
        if os.access(path, os.R_OK):
            path.chmod(0o755)
            pytest.skip("this user (root) reads without read permission: the simulated case runs")
        return
    name = "scandir" if path.is_dir() else "open"
    real = getattr(os, name)

    def refusing(target, *args, **kwargs):
        if os.fspath(target) == os.fspath(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(target))
        return real(target, *args, **kwargs)

    monkeypatch.setattr(os, name, refusing)


def noise_image(width: int = 200, height: int = 150, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def jpeg_bytes(image: Image.Image, **options) -> bytes:
    buffer = BytesIO()
    image.save(buffer, format="JPEG", quality=90, **options)
    return buffer.getvalue()


def truncated_jpeg() -> bytes:
    whole = jpeg_bytes(noise_image())
    return whole[: len(whole) // 2]


def cmyk_jpeg() -> bytes:
    return jpeg_bytes(Image.new("CMYK", (40, 30), (0, 255, 255, 0)))  # red in CMYK


def grayscale_jpeg() -> bytes:
    return jpeg_bytes(Image.new("L", (40, 30), 100))


def palette_png_with_transparency() -> bytes:
    """40x30: left half palette entry 0 (black, marked transparent), right half entry 1 (blue)."""
    image = Image.new("P", (40, 30), 0)
    image.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    image.paste(1, (20, 0, 40, 30))
    buffer = BytesIO()
    image.save(buffer, format="PNG", transparency=0)
    return buffer.getvalue()


def exif_rotated_jpeg() -> bytes:
    """40x20 stored with red on the left and blue on the right; shown, red is on top."""
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATE_90_CLOCKWISE
    return jpeg_bytes(image, exif=exif.tobytes())


def tiff_ifd(entries: list[tuple[int, int, int, bytes]]) -> bytes:
    """A little-endian TIFF header and one IFD: (tag, type, count, value bytes) per entry.

    The layout of an EXIF block; values longer than 4 bytes go after the IFD. Written by hand
    because Pillow re-reads and re-checks the EXIF it is given to write.
    """
    data_at = 8 + 2 + 12 * len(entries) + 4
    fields, data = b"", b""
    for tag, kind, count, value in sorted(entries):
        if len(value) <= 4:
            field = value.ljust(4, b"\0")
        else:
            field = struct.pack("<I", data_at + len(data))
            data += value
        fields += struct.pack("<HHI", tag, kind, count) + field
    return b"II*\0" + struct.pack("<IH", 8, len(entries)) + fields + b"\0\0\0\0" + data


EXIF_MAKE, EXIF_RATIONAL, EXIF_SHORT = 0x010F, 5, 3


def odd_exif_rotated_jpeg() -> bytes:
    """exif_rotated_jpeg's picture, but the camera stored its Make as a RATIONAL (1/2), not
    text: Pillow reads the block, and ImageOps.exif_transpose fails writing it back."""
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))
    exif = tiff_ifd(
        [
            (EXIF_MAKE, EXIF_RATIONAL, 1, struct.pack("<II", 1, 2)),
            (EXIF_ORIENTATION, EXIF_SHORT, 1, struct.pack("<H", ROTATE_90_CLOCKWISE)),
        ]
    )
    return jpeg_bytes(image, exif=b"Exif\0\0" + exif)


def dds_texture(fourcc: bytes = b"ABCD") -> bytes:
    """A DirectDraw Surface (a game texture) whose pixel format Pillow does not implement: it
    knows the file by its content, whatever the suffix, and raises NotImplementedError."""
    flags, height, width = 0x1007, 8, 8  # caps, height, width, pixel format
    header = struct.pack("<6I", flags, height, width, 0, 0, 0) + bytes(44)
    pixel_format = struct.pack("<2I4s5I", 32, 0x4, fourcc, 0, 0, 0, 0, 0)  # 0x4: a FourCC
    caps = struct.pack("<5I", 0x1000, 0, 0, 0, 0)
    return b"DDS " + struct.pack("<I", 124) + header + pixel_format + caps + bytes(64)


def huge_png_header(width: int = 30_000, height: int = 30_000) -> bytes:
    """A PNG whose header declares width x height pixels: a few bytes, a decompression bomb."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IEND", b"")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


# Images whose samples are not plain 8-bit: left half one value, right half another.


def halves(left, right, dtype=None, width: int = 40, height: int = 30) -> np.ndarray:
    """(height, width) or (height, width, C) array: columns < width/2 `left`, the rest `right`."""
    pixels = np.empty((height, width, *np.shape(left)), dtype=dtype or np.asarray(left).dtype)
    pixels[:, : width // 2], pixels[:, width // 2 :] = left, right
    return pixels


def image_in_mode(mode: str, pixels: np.ndarray) -> Image.Image:
    """pixels (height, width[, bands]) as the raw bytes of a Pillow image in `mode`."""
    return Image.frombytes(mode, pixels.shape[1::-1], pixels.tobytes())


def image_bytes(image: Image.Image, format: str, **options) -> bytes:
    buffer = BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def float_tiff(left: float, right: float) -> bytes:
    return image_bytes(Image.fromarray(halves(left, right, np.float32)), "TIFF")


def png_bytes(pixels: np.ndarray, bit_depth: int, colour_type: int, trns: bytes = b"") -> bytes:
    """A PNG written by hand, for what Pillow will not write (16-bit colour, 2-bit grey, keys).

    pixels: (height, width[, channels]) unsigned samples; bit_depth < 8 packs grey samples.
    colour_type: 0 grey, 2 RGB, 4 grey + alpha, 6 RGBA. trns: the tRNS chunk's data (a key).
    """
    height, width = pixels.shape[:2]
    if bit_depth < 8:
        rows = [
            np.packbits(np.unpackbits(row.astype(np.uint8)[:, None], axis=1)[:, -bit_depth:])
            for row in pixels
        ]
        data = b"".join(b"\0" + row.tobytes() for row in rows)
    else:
        samples = pixels.astype(">u2" if bit_depth == 16 else np.uint8)
        data = b"".join(b"\0" + row.tobytes() for row in samples)
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    chunks = _png_chunk(b"IHDR", header)
    if trns:
        chunks += _png_chunk(b"tRNS", trns)
    chunks += _png_chunk(b"IDAT", zlib.compress(data)) + _png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def tiff_bytes(
    pixels: np.ndarray,
    bits: int,
    photometric: int,
    *,
    sample_format: int = 1,
    extra_samples: tuple[int, ...] = (),
) -> bytes:
    """An uncompressed little-endian TIFF written by hand, for what Pillow will not write.

    pixels: (height, width[, samples]); bits per sample: 12 (packed), 16, 32 or 64, else 8.
    photometric: 1 grey, 2 RGB, 8 CIELab. sample_format: 1 unsigned, 2 signed, 3 float.
    extra_samples: per extra sample, 1 associated (premultiplied) or 2 unassociated alpha.
    """
    height, width = pixels.shape[:2]
    per_pixel = pixels.shape[2] if pixels.ndim == 3 else 1
    if bits == 12:  # two samples in three bytes, most significant bits first
        pairs = pixels.astype(np.uint16).reshape(-1, 2)
        packed = np.stack(
            [pairs[:, 0] >> 4, ((pairs[:, 0] & 15) << 4) | (pairs[:, 1] >> 8), pairs[:, 1] & 255],
            axis=1,
        )
        data = packed.astype(np.uint8).tobytes()
    else:
        kind = {1: "u", 2: "i", 3: "f"}[sample_format]
        data = pixels.astype(f"<{kind}{max(bits, 8) // 8}").tobytes()
    entries = [  # tag, type (3 SHORT, 4 LONG), values
        (256, 4, [width]),
        (257, 4, [height]),
        (258, 3, [bits] * per_pixel),
        (259, 3, [1]),  # no compression
        (262, 3, [photometric]),
        (273, 4, [0]),  # strip offset, set below
        (277, 3, [per_pixel]),
        (278, 4, [height]),
        (279, 4, [len(data)]),
        (284, 3, [1]),  # samples of a pixel together
    ]
    if extra_samples:
        entries.append((338, 3, list(extra_samples)))
    entries.append((339, 3, [sample_format] * per_pixel))
    ifd_size = 2 + 12 * len(entries) + 4
    overflow_at = 8 + ifd_size
    overflow = b""
    packed_entries = []
    for tag, kind, values in entries:
        value = struct.pack(f"<{len(values)}{'H' if kind == 3 else 'I'}", *values)
        if len(value) <= 4:
            field = value.ljust(4, b"\0")
        else:
            field = struct.pack("<I", overflow_at + len(overflow))
            overflow += value
        packed_entries.append((tag, kind, len(values), field))
    data_at = overflow_at + len(overflow)
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, field in packed_entries:
        if tag == 273:
            field = struct.pack("<I", data_at)
        ifd += struct.pack("<HHI", tag, kind, count) + field
    ifd += struct.pack("<I", 0)  # no next image
    return b"II*\0" + struct.pack("<I", 8) + ifd + overflow + data


@dataclass
class ProblemFiles:
    """What a scan must report for the files that add_problem_files wrote."""

    skipped: dict[str, str] = field(default_factory=dict)  # path in the split -> reason start
    ignored: dict[str, str] = field(default_factory=dict)  # path in the split -> reason
    usable_per_class: dict[str, int] = field(default_factory=dict)  # extra usable images


# Names an archive from Windows leaves on Linux: Latin-1 bytes, not UTF-8 (see catdog.names).
LATIN_1_EMPTY = os.fsdecode(b"cats/vide_\xe9t\xe9.jpg")
LATIN_1_USABLE = os.fsdecode(b"dogs/chien_\xe9t\xe9.jpg")


def add_problem_files(split_dir: Path) -> ProblemFiles:
    """Write each case into split_dir/cats, split_dir/dogs and split_dir itself, and a folder
    of two more dogs next to the split that dogs/batch2 links to."""
    expected = ProblemFiles()
    skipped = {
        "cats/empty.jpg": (b"", "empty file"),
        "cats/truncated.jpg": (truncated_jpeg(), "cannot be decoded (image file is truncated"),
        "cats/notes.txt": (b"shot list", "not an image file (.txt)"),
        "dogs/page.jpg": (b"<html>not found</html>", "not an image Pillow can read"),
        "dogs/huge.png": (huge_png_header(), "too large"),
        "dogs/hdr.tif": (
            float_tiff(0.0, 4.0),
            "floating-point samples 0..4: only 0..1 (black..white) has a known meaning",
        ),
        "dogs/texture.jpg": (dds_texture(), "cannot be decoded (Unimplemented pixel format"),
        LATIN_1_EMPTY: (b"", "empty file"),
    }
    usable = {
        "cats/cmyk.jpg": cmyk_jpeg(),
        "cats/gray.jpg": grayscale_jpeg(),
        "cats/grey16.png": image_bytes(Image.fromarray(halves(8192, 49152, np.uint16)), "PNG"),
        "dogs/palette.png": palette_png_with_transparency(),
        "dogs/rotated.jpg": exif_rotated_jpeg(),
        "dogs/float.tif": float_tiff(0.25, 0.75),
        "cats/odd_exif.jpg": odd_exif_rotated_jpeg(),
        LATIN_1_USABLE: grayscale_jpeg(),
    }
    ignored = {
        "cats/.DS_Store": (b"\0\0\0\1Bud1", "hidden file"),
        "cats/._cmyk.jpg": (b"\0\5\26\7AppleDouble", "hidden file"),
        "dogs/Thumbs.db": (b"\xd0\xcf\x11\xe0", "system file"),
        ".ipynb_checkpoints/cat-checkpoint.jpg": (cmyk_jpeg(), None),
        "dogs/.thumbnails/a.jpg": (grayscale_jpeg(), None),
        "dogs/.thumbnails/b.jpg": (grayscale_jpeg(), None),
    }
    for name, (content, _reason) in {**skipped, **ignored}.items():
        _write(split_dir / name, content)
    for name, content in usable.items():
        _write(split_dir / name, content)
    links = {
        "dogs/gone.jpg": ("missing.jpg", "a link to missing.jpg, which does not exist"),
        "dogs/batch2": (f"../../extra_{split_dir.name}_dogs", None),  # two dogs, used
        "dogs/batch2/again": (".", "a link to ., a folder that holds it: not followed"),
        "cats/more": (
            "../dogs",
            f"the same folder as {printable(split_dir / 'dogs')}: its images are listed once, "
            "there",
        ),
    }
    for name in ("a.jpg", "b.jpg"):
        _write(split_dir.parent / f"extra_{split_dir.name}_dogs" / name, grayscale_jpeg())
    for name, (target, _reason) in links.items():
        (split_dir / name).symlink_to(target)
    skipped |= {name: (None, reason) for name, (_, reason) in links.items() if reason}
    expected.skipped = {name: reason for name, (_, reason) in skipped.items()}
    expected.ignored = {name: reason for name, (_, reason) in ignored.items() if reason}
    expected.ignored[".ipynb_checkpoints"] = "hidden folder (1 file)"
    expected.ignored["dogs/.thumbnails"] = "hidden folder (2 files)"
    expected.usable_per_class = {"cats": 4, "dogs": 6}
    return expected


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
