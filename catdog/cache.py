"""Decode a split once into a uint8 tensor and keep it on disk while the files are unchanged.

A split of N images at S px becomes `images` (N, 3, S, S) uint8 and `labels` (N,) int64, in the
class-sorted file order of `catdog.dataset`. The cache file is keyed by a fingerprint of every
file's path, size and modification time plus the image size, so editing, adding or removing one
image rebuilds it, and anything else reuses it (8 000 photos at 256 px: 1.5 GiB, read back in
about a second instead of a minute of JPEG decoding).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from catdog.atomic import atomic_write
from catdog.cores import usable_cores
from catdog.dataset import ImageFile, SkippedFile, SplitListing, list_split
from catdog.images import decode_or_reason
from catdog.names import printable

# Bump when decoding changes, so old caches are not reused. 3: odd EXIF no longer refuses a file.
CACHE_FORMAT = "catdog-image-cache-3"


@dataclass(frozen=True)
class ImageSet:
    images: torch.Tensor  # (N, 3, S, S) uint8
    labels: torch.Tensor  # (N,) int64, an index into classes (0 = cats, 1 = dogs)
    paths: list[str]  # source file of each row
    skipped: list[SkippedFile]  # files left out, with the reason
    ignored: list[SkippedFile] = field(default_factory=list)  # hidden, system and stray files
    classes: tuple[str, ...] = field(kw_only=True)  # the class folders, in label order

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def subset(self, index: torch.Tensor) -> ImageSet:
        """The rows `index` (N',) int64, in that order; skipped and ignored files stay listed."""
        return ImageSet(
            self.images[index],
            self.labels[index],
            [self.paths[i] for i in index.tolist()],
            self.skipped,
            self.ignored,
            classes=self.classes,
        )


def fingerprint(files: list[ImageFile], skipped: list[SkippedFile], image_size: int) -> str:
    """Hex digest that changes whenever a listed file is added, removed, edited or relabelled.

    A name is hashed as the bytes it has on disk (os.fsencode), so names that are not UTF-8
    (a Latin-1 archive unpacked on Linux) count as well as any other.
    """
    digest = hashlib.sha256(f"{CACHE_FORMAT}\n{image_size}\n".encode())
    for path, label in [(f.path, f.label) for f in files] + [(s.path, -1) for s in skipped]:
        digest.update(os.fsencode(path) + f"\0{label}\0{_file_state(path)}\n".encode())
    return digest.hexdigest()


def _file_state(path: Path) -> str:
    """Size and modification time (ns) of the file, or of the link itself when it leads
    nowhere, or "gone"; a change in any of them makes another fingerprint."""
    for status in (os.stat, os.lstat):
        try:
            state = status(path)
        except OSError:
            continue
        return f"{state.st_size}\0{state.st_mtime_ns}"
    return "gone"


DecodeProgress = Callable[[int, int], None]  # (images decoded so far, images to decode)


def read_split(
    split_dir: Path,
    image_size: int,
    cache_dir: Path | None,
    *,
    warn: bool = True,
    on_decoded: DecodeProgress | None = None,
    write_cache: bool = True,
) -> ImageSet:
    """The decoded split and every file left out with the reason.

    Read from the cache when its fingerprint matches, else decoded and cached. `data check` and
    training both read a split through here, so they never disagree on which files are used.
    warn: warn about each skipped file by name (training); `data check` lists them itself.
    on_decoded: told how far decoding has got, when the split is decoded rather than read back.
    write_cache: False for a command that only reads (`report`): a split not in the cache is
    decoded and not kept.
    """
    listing = list_split(split_dir)
    image_set = _cached_or_decoded(
        split_dir, listing, image_size, cache_dir, on_decoded, write=write_cache
    )
    if warn:
        warn_skipped(image_set.skipped)
    return replace(image_set, ignored=listing.ignored, classes=listing.classes)


def _cached_or_decoded(
    split_dir: Path,
    listing: SplitListing,
    image_size: int,
    cache_dir: Path | None,
    on_decoded: DecodeProgress | None,
    *,
    write: bool,
) -> ImageSet:
    cache_file = None
    if cache_dir is not None:
        cache_file = _cache_file(split_dir, listing, image_size, cache_dir)
        if cache_file.exists():
            image_set = _read_cache(cache_file, listing.classes)
            if image_set is not None:
                return image_set
    image_set = _decode_all(listing, image_size, on_decoded)
    if cache_file is not None and write:
        _write_cache(cache_file, image_set)
        # Caches of earlier versions of this split at this size can never match again.
        for stale in cache_file.parent.glob(f"{split_dir.name}-{image_size}px-*.safetensors"):
            if stale != cache_file:
                stale.unlink(missing_ok=True)
    return image_set


def is_cached(split_dir: Path, image_size: int, cache_dir: Path) -> bool:
    """True when `cache_dir` holds the split's current files at this size; reads no pixels."""
    cache_file = _cache_file(split_dir, list_split(split_dir), image_size, cache_dir)
    try:
        with safe_open(str(cache_file), framework="pt") as handle:
            return (handle.metadata() or {}).get("format") == CACHE_FORMAT
    except (SafetensorError, OSError, ValueError, RuntimeError):
        return False


def _cache_file(split_dir: Path, listing: SplitListing, image_size: int, cache_dir: Path) -> Path:
    key = fingerprint(listing.files, listing.skipped, image_size)
    return Path(cache_dir) / f"{split_dir.name}-{image_size}px-{key[:20]}.safetensors"


DECODED_EVERY = 256  # images between two on_decoded calls


def _decode_all(
    listing: SplitListing, image_size: int, on_decoded: DecodeProgress | None = None
) -> ImageSet:
    files = listing.files

    def decode(file: ImageFile) -> np.ndarray | str:
        return decode_or_reason(file.path, image_size)  # a file's failure is a reason, not a raise

    # Pillow releases the GIL while decoding and resizing, so threads use every core.
    decoded: list[np.ndarray | str] = []
    with ThreadPoolExecutor(max_workers=usable_cores()) as pool:
        for pixels in pool.map(decode, files):
            decoded.append(pixels)
            if on_decoded is not None and (
                len(decoded) % DECODED_EVERY == 0 or len(decoded) == len(files)
            ):
                on_decoded(len(decoded), len(files))
    images = torch.empty((len(files), 3, image_size, image_size), dtype=torch.uint8)
    labels, paths, skipped = [], [], list(listing.skipped)
    for file, pixels in zip(files, decoded, strict=True):
        if isinstance(pixels, str):
            skipped.append(SkippedFile(file.path, pixels))
            continue
        images[len(labels)] = torch.from_numpy(pixels).permute(2, 0, 1)  # HWC -> CHW
        labels.append(file.label)
        paths.append(str(file.path))
    images = images[: len(labels)].clone()
    labels = torch.tensor(labels, dtype=torch.int64)
    return ImageSet(images, labels, paths, skipped, classes=listing.classes)


def warn_skipped(skipped: list[SkippedFile]) -> None:
    """One warning per file left out, naming it; they never stop the run."""
    for item in skipped:
        warnings.warn(f"skipped {printable(item.path)}: {item.reason}", stacklevel=3)


def _write_cache(cache_file: Path, image_set: ImageSet) -> None:
    # json.dumps writes a name that is not UTF-8 with \udcXX escapes: ASCII that reads back as
    # the same name, as safetensors' metadata must be UTF-8.
    metadata = {
        "format": CACHE_FORMAT,
        "paths": json.dumps(image_set.paths),
        "skipped": json.dumps([[str(s.path), s.reason] for s in image_set.skipped]),
    }
    tensors = {"images": image_set.images.contiguous(), "labels": image_set.labels}
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(cache_file) as temporary:
        save_file(tensors, str(temporary), metadata=metadata)


def _read_cache(cache_file: Path, classes: tuple[str, ...]) -> ImageSet | None:
    """The cached set, or None when the file is unreadable (it is then rebuilt)."""
    try:
        with safe_open(str(cache_file), framework="pt") as handle:
            metadata = handle.metadata() or {}
        if metadata.get("format") != CACHE_FORMAT:
            return None
        tensors = load_file(str(cache_file))
        skipped = [SkippedFile(Path(p), r) for p, r in json.loads(metadata["skipped"])]
        paths = json.loads(metadata["paths"])
        return ImageSet(tensors["images"], tensors["labels"], paths, skipped, classes=classes)
    except (SafetensorError, OSError, ValueError, KeyError, RuntimeError):
        return None
