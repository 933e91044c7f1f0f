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


def add_problem_files(split_dir: Path) -> ProblemFiles:
    """Write each case into split_dir/cats, split_dir/dogs and split_dir itself."""
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
    }
    usable = {
        "cats/cmyk.jpg": cmyk_jpeg(),
        "cats/gray.jpg": grayscale_jpeg(),
        "cats/grey16.png": image_bytes(Image.fromarray(halves(8192, 49152, np.uint16)), "PNG"),
        "dogs/palette.png": palette_png_with_transparency(),
        "dogs/rotated.jpg": exif_rotated_jpeg(),
        "dogs/float.tif": float_tiff(0.25, 0.75),
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
    expected.usable_per_class = {"cats": 3, "dogs": 3}
    return expected


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
