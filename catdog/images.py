"""Decode one image file into a square uint8 RGB array, the way training and prediction see it.

Every mode Pillow opens becomes faithful 8-bit RGB, or the file is refused with the reason
(ImageDecodeError): `data check` prints it, training skips the file, `predict` reports it.
Whatever goes wrong with one file is that file's problem: Pillow identifies files by their
content and its plugins raise far more than OSError on odd ones (NotImplementedError for a DDS
texture renamed .jpg, struct.error, IndexError, ...), and all of it becomes a reason here.
"""

from __future__ import annotations

import os
import re
import stat
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, Image

from catdog.errors import CatdogError
from catdog.folders import missing_target
from catdog.names import printable

# Pillow refuses images above this many pixels instead of decoding them (decompression bombs).
# 64 megapixels is far above any photo in the data set (the largest is about 0.5 megapixels).
MAX_IMAGE_PIXELS = 64_000_000
_REASON_CHARACTERS = 200  # a decoder's message is cut there: a reason is one line


class ImageDecodeError(CatdogError, ValueError):
    """A file that is not a usable image; the message is the reason, for the user."""


def decode_image(path: Path, image_size: int) -> np.ndarray:
    """Pixels of `path` resized to (image_size, image_size, 3) uint8, EXIF-rotated, RGB.

    Like the report's Resize((256, 256)) the image is squashed, not cropped, to a square.
    ImageDecodeError, with the reason, for any file that cannot be used, whatever its decoder
    raised; only MemoryError, the machine's problem rather than the file's, passes through.
    """
    with _open_regular_file(path) as file:
        return _decode(file, image_size)


def decode_or_reason(path: Path, image_size: int) -> np.ndarray | str:
    """decode_image's pixels, or the reason the file cannot be used (for a pool of threads)."""
    try:
        return decode_image(path, image_size)
    except ImageDecodeError as error:
        return str(error)


_NOT_A_FILE = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a named pipe", stat.S_IFCHR: "a device"}


def _open_regular_file(path: Path) -> BinaryIO:
    """The file, opened for reading; ImageDecodeError when it cannot be read or is no file."""
    try:
        # Non-blocking: a named pipe would otherwise wait forever for a writer.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:  # no such file, a link that leads nowhere, no permission, ...
        reason = missing_target(path)
        if reason is None and isinstance(error, FileNotFoundError):
            reason = "no such file"
        raise ImageDecodeError(reason or f"cannot be read ({error.strerror or error})") from None
    status = os.fstat(descriptor)
    kind = stat.S_IFMT(status.st_mode)
    reason = None
    if kind != stat.S_IFREG:
        reason = _NOT_A_FILE.get(kind, "not a regular file")
    elif status.st_size == 0:
        reason = "empty file"
    if reason is not None:
        os.close(descriptor)
        raise ImageDecodeError(reason)
    return os.fdopen(descriptor, "rb")


def _decode(file: BinaryIO, image_size: int) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            # A bomb is an error below, not a warning; Pillow's own warning would just be noise.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise ImageDecodeError(
                        f"too large ({image.width}x{image.height} pixels, "
                        f"limit {MAX_IMAGE_PIXELS:,})"
                    )
                # JPEG can decode at 1/2, 1/4 or 1/8 scale directly: much faster for big photos.
                image.draft("RGB", (image_size, image_size))
                raw_mode = _raw_mode(image)  # the stored depth; gone once the pixels are loaded
                image.load()  # broken data fails here, before the EXIF block is looked at
                rgb = _to_rgb(_upright(image), raw_mode)
                resized = rgb.resize((image_size, image_size), Image.Resampling.BILINEAR)
                return np.array(resized, dtype=np.uint8)  # a writable copy for torch
    except (ImageDecodeError, MemoryError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageDecodeError(f"too large ({_one_line(error)})") from None
    except Image.UnidentifiedImageError:
        raise ImageDecodeError("not an image Pillow can read") from None
    except Exception as error:
        # Truncated or corrupt data surfaces as OSError ("image file is truncated"), broken PNG
        # chunks as SyntaxError, formats Pillow knows only in part as NotImplementedError, and
        # a plugin's own slips on crafted data as struct.error, IndexError, TypeError and more.
        raise ImageDecodeError(f"cannot be decoded ({_one_line(error)})") from None


def _one_line(error: Exception) -> str:
    """A decoder's message as part of a one-line reason: printable, short, never empty."""
    text = printable(" ".join(str(error).split())) or type(error).__name__
    if len(text) > _REASON_CHARACTERS:
        text = text[: _REASON_CHARACTERS - 3] + "..."
    return text


# EXIF Orientation -> the turn that shows the stored pixels upright (what exif_transpose does).
_ORIENTATION = ExifTags.Base.Orientation
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _upright(image: Image.Image) -> Image.Image:
    """The pixels turned as the EXIF Orientation tag says (as stored when it cannot be read).

    Not ImageOps.exif_transpose: it also writes the EXIF block back without the tag, which
    fails on odd camera EXIF (a Make tag stored as a RATIONAL) and would lose the turn; only
    the pixels are kept here, so only the tag is read.
    """
    try:
        orientation = image.getexif().get(_ORIENTATION)
    except MemoryError:
        raise
    except Exception:  # an EXIF block too broken to read: the pixels as stored
        return image
    method = _UPRIGHT.get(orientation) if isinstance(orientation, int) else None
    return image if method is None else image.transpose(method)


_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})

# Pillow's convert("RGB") is right for the 8-bit modes (1, L, P, RGB, CMYK, YCbCr, HSV) but clips
# deeper samples instead of scaling them (16-bit 8192 of 65535 comes out 255, white). They are
# mapped here by fixed rules, never by stretching each image's own min..max (that changes contrast:
# a dark picture would come out bright):
# - Integers (I;16, I;16L, I;16B, I;16N, I): 0 is black; white is the top of the depth the file
#   declares, read from the raw mode Pillow decodes it with, not guessed from the pixels: 65535
#   for 16 bits (PNG, TIFF, PGM, whose maxval Pillow rescales to 65535), 4095 for 12-bit TIFF,
#   2**32 - 1 or 2**31 - 1 for unsigned or signed 32 bits. level = value * 256 // (white + 1),
#   256 equal bins: for 16 bits the high byte, which is what Pillow keeps of 16-bit colour PNGs
#   and TIFFs and the exact inverse of widening 8 bits to 16 (v * 257). So 8192 -> 32 and
#   49152 -> 192, as in the same picture saved at 8 bits.
# - Signed integers: 0 is black (scikit-image, torchvision); a negative sample has no level.
# - Floats (F): 0.0 is black and 1.0 white (torchvision, scikit-image, matplotlib);
#   level = min(floor(value * 256), 255), as torchvision's convert_image_dtype. Half a level of
#   rounding noise outside 0..1 is clipped; another range (HDR, raw data), NaN or infinity is
#   refused: its black and white are unknown.
# - Samples that differ but all fall in the lowest level (8-bit values in a 16-bit file) are
#   refused: the picture would be a black square that counts as usable.
# - A transparent key of 16-bit grey is matched on the 16-bit samples; 16-bit colour with a key is
#   refused, as Pillow reads that colour at 8 bits, where the key cannot be matched exactly.
# - LAB goes to sRGB through littlecms (D50 Lab, as Pillow >= 11's own convert does).
_DEEP_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
# Raw modes of integer samples: "I;16B" (16 bits, big-endian), "I;16S" (signed), "I;32N", "I;12".
_INTEGER_RAW_MODE = re.compile(r"I;(?P<bits>\d+)[BLNR]?(?P<signed>S?)")
# PNG grey of 2 or 4 bits: Pillow scales the samples to 0..255, but not the transparent key.
_LOW_BIT_GREY_SCALE = {"L;2": 85, "L;4": 17}
_HALF_LEVEL = 1 / 512  # of the float range 0..1


def _to_rgb(image: Image.Image, raw_mode: str | None = None) -> Image.Image:
    """RGB pixels; transparent areas become white rather than whatever colour hid under them.

    raw_mode: how the file stores the samples (`_raw_mode`, read before decoding), which tells
    the depth of integer samples; without it a mode's own full depth is assumed.
    """
    key = image.info.get("transparency")
    if image.mode in _DEEP_MODES:
        image = _deep_to_grey(image, raw_mode)  # L, or LA when a key made pixels transparent
    elif image.mode == "LAB":
        return _lab_to_rgb(image)
    elif key is not None and image.mode == "RGB" and (raw_mode or "").startswith("RGB;16"):
        raise ImageDecodeError(
            "16-bit colour with a transparent key colour, which cannot be matched: Pillow "
            "reads 16-bit colour at 8 bits"
        )
    elif isinstance(key, int) and image.mode == "L" and raw_mode in _LOW_BIT_GREY_SCALE:
        image = image.copy()
        image.info["transparency"] = key * _LOW_BIT_GREY_SCALE[raw_mode]
    elif image.mode == "La":
        image = image.convert("LA")  # Pillow un-premultiplies La only into LA
    has_alpha = image.mode in _ALPHA_MODES or "transparency" in image.info
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _raw_mode(image: Image.Image) -> str | None:
    """The raw mode Pillow will decode the file's samples from (e.g. "I;16B"), or None."""
    tile = getattr(image, "tile", None)
    if not tile:
        return None
    codec, args = tile[0][0], tile[0][3]
    if codec in ("ppm", "ppm_plain") and image.mode == "I":
        return "I;16"  # Pillow rescales a PGM's maxval (256..65535) to 0..65535
    if isinstance(args, tuple) and args:
        args = args[0]
    return args if isinstance(args, str) else None


def _deep_to_grey(image: Image.Image, raw_mode: str | None) -> Image.Image:
    """Samples of an I, I;16* or F image as 8-bit grey ("L"), by the rules above."""
    samples = np.asarray(image)
    if image.mode == "F":
        levels = _float_levels(samples)
    else:
        levels = _integer_levels(samples, image.mode, raw_mode)
    key = image.info.get("transparency")
    if not isinstance(key, int):
        return Image.fromarray(levels)
    opaque = np.where(samples == key, 0, 255).astype(np.uint8)
    return Image.fromarray(np.dstack((levels, opaque)))  # LA


def _integer_levels(samples: np.ndarray, mode: str, raw_mode: str | None) -> np.ndarray:
    match = _INTEGER_RAW_MODE.fullmatch(raw_mode or "")
    if match:
        bits, signed = int(match["bits"]), bool(match["signed"])
    elif mode == "I":
        bits, signed = 32, True  # what mode I holds
    else:
        bits, signed = 16, False  # what modes I;16* hold
    if bits == 32 and not signed:
        samples = samples.view(np.uint32)  # Pillow keeps unsigned 32-bit samples as int32
    value_bits = bits - signed  # 2 ** value_bits levels from black to white
    white = 2**value_bits - 1
    depth = f"{'signed ' if signed else ''}{bits}-bit"
    low, high = int(samples.min()), int(samples.max())
    if low < 0:
        raise ImageDecodeError(
            f"{depth} samples down to {low}: below 0 (black) has no 8-bit level"
        )
    if high > white:
        raise ImageDecodeError(f"{depth} samples up to {high}: above the depth's white ({white})")

    def level(values):
        if value_bits >= 8:
            return values >> (value_bits - 8)
        return values << (8 - value_bits)

    if low != high and level(high) == 0:
        raise ImageDecodeError(
            f"{depth} samples {low}..{high} of 0..{white} all fall in the lowest 8-bit level: "
            "the picture would be a black square"
        )
    return level(samples).astype(np.uint8)


def _float_levels(samples: np.ndarray) -> np.ndarray:
    if not np.isfinite(samples).all():
        raise ImageDecodeError("floating-point samples that are NaN or infinite")
    low, high = float(samples.min()), float(samples.max())
    if low < -_HALF_LEVEL or high > 1 + _HALF_LEVEL:
        raise ImageDecodeError(
            f"floating-point samples {low:g}..{high:g}: only 0..1 (black..white) has a known "
            "meaning"
        )

    def level(values):
        return np.clip(np.floor(np.multiply(values, 256)), 0, 255)

    if low != high and level(high) == 0:
        raise ImageDecodeError(
            f"floating-point samples {low:g}..{high:g} of 0..1 all fall in the lowest 8-bit "
            "level: the picture would be a black square"
        )
    return level(samples).astype(np.uint8)


def _lab_to_rgb(image: Image.Image) -> Image.Image:
    """CIELab (D50, a and b offset by 128 as Pillow stores them) to sRGB, through littlecms."""
    try:
        from PIL import ImageCms  # only LAB files need colour management
    except ImportError:
        raise ImageDecodeError("CIELab colour, which needs Pillow with littlecms") from None
    try:
        transform = ImageCms.buildTransform(
            ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB"
        )
        return ImageCms.applyTransform(image, transform)
    except ImageCms.PyCMSError as error:
        raise ImageDecodeError(f"CIELab colour cannot be converted ({error})") from None


def stored_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels as stored in the file, from its header alone (no decoding)."""
    with Image.open(path) as image:
        return image.size
