"""Files with the surprises real photo folders hold, written by the tests themselves."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image

EXIF_ORIENTATION = 0x0112
ROTATE_90_CLOCKWISE = 6  # EXIF: the stored pixels must be turned 90 degrees clockwise to show


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


def huge_png_header(width: int = 30_000, height: int = 30_000) -> bytes:
    """A PNG whose header declares width x height pixels: a few bytes, a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


@dataclass
class ProblemFiles:
    """What a scan must report for the files that add_problem_files wrote."""

    skipped: dict[str, str] = field(default_factory=dict)  # path in the split -> reason start
    ignored: dict[str, str] = field(default_factory=dict)  # path in the split -> reason
    usable_per_class: dict[str, int] = field(default_factory=dict)  # extra usable images


def add_problem_files(split_dir: Path) -> ProblemFiles:
    """Write each case into split_dir/cats, split_dir/dogs and split_dir itself."""
    expected = ProblemFiles()
    skipped = {
        "cats/empty.jpg": (b"", "empty file"),
        "cats/truncated.jpg": (truncated_jpeg(), "cannot be decoded (image file is truncated"),
        "cats/notes.txt": (b"shot list", "not an image file (.txt)"),
        "dogs/page.jpg": (b"<html>not found</html>", "not an image Pillow can read"),
        "dogs/huge.png": (huge_png_header(), "too large"),
    }
    usable = {
        "cats/cmyk.jpg": cmyk_jpeg(),
        "cats/gray.jpg": grayscale_jpeg(),
        "dogs/palette.png": palette_png_with_transparency(),
        "dogs/rotated.jpg": exif_rotated_jpeg(),
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
    expected.skipped = {name: reason for name, (_, reason) in skipped.items()}
    expected.ignored = {name: reason for name, (_, reason) in ignored.items() if reason}
    expected.ignored[".ipynb_checkpoints"] = "hidden folder (1 file)"
    expected.ignored["dogs/.thumbnails"] = "hidden folder (2 files)"
    expected.usable_per_class = {"cats": 2, "dogs": 2}
    return expected


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
