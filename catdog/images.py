"""Decode one image file into a square uint8 RGB array, the way training and prediction see it."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from catdog.errors import CatdogError

# Pillow refuses images above this many pixels instead of decoding them (decompression bombs).
# 64 megapixels is far above any photo in the data set (the largest is about 0.5 megapixels).
MAX_IMAGE_PIXELS = 64_000_000


class ImageDecodeError(CatdogError, ValueError):
    """A file that is not a usable image; the message is the reason, for the user."""


def decode_image(path: Path, image_size: int) -> np.ndarray:
    """Pixels of `path` resized to (image_size, image_size, 3) uint8, EXIF-rotated, RGB.

    Like the report's Resize((256, 256)) the image is squashed, not cropped, to a square.
    """
    if Path(path).stat().st_size == 0:
        raise ImageDecodeError("empty file")
    try:
        with warnings.catch_warnings():
            # A bomb is an error below, not a warning; Pillow's own warning would just be noise.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise ImageDecodeError(
                        f"too large ({image.width}x{image.height} pixels, "
                        f"limit {MAX_IMAGE_PIXELS:,})"
                    )
                # JPEG can decode at 1/2, 1/4 or 1/8 scale directly: much faster for big photos.
                image.draft("RGB", (image_size, image_size))
                image = ImageOps.exif_transpose(image)
                rgb = _to_rgb(image)
                resized = rgb.resize((image_size, image_size), Image.Resampling.BILINEAR)
                return np.array(resized, dtype=np.uint8)  # a writable copy for torch
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageDecodeError(f"too large ({error})") from None
    except Image.UnidentifiedImageError:
        raise ImageDecodeError("not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as error:
        # Truncated or corrupt data surfaces as OSError ("image file is truncated") or
        # SyntaxError (broken PNG chunks) while decoding.
        raise ImageDecodeError(f"cannot be decoded ({error})") from None


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB pixels; transparent areas become white rather than whatever colour hid under them."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def stored_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels as stored in the file, from its header alone (no decoding)."""
    with Image.open(path) as image:
        return image.size
