"""Classify many image files with a trained model: in batches, in order, in bounded memory.

The files come from what a user names: files as they are, folders (every image in them and
below, hidden entries skipped, links to folders followed as catdog.folders does) and glob
patterns the shell left alone (a quoted 'photos/*.jpg').
Threads decode one batch while the model classifies the one before it (Pillow releases the GIL,
as in catdog.cache), so at most two batches of pixels are held at once, however many files.
"""

from __future__ import annotations

import glob
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np
import torch

from catdog.cores import usable_cores
from catdog.dataset import IMAGE_SUFFIXES
from catdog.errors import CatdogError
from catdog.folders import SkippedFile, imagefolder_order, walk_folder
from catdog.images import decode_or_reason
from catdog.model import CatDogCNN
from catdog.names import printable
from catdog.train import predict_probabilities

GLOB_CHARACTERS = frozenset("*?[")

# What to classify: a file, or what a named folder held that cannot be (with the reason).
Entry = Path | SkippedFile


class ImagePathError(CatdogError, ValueError):
    """A folder or pattern that names no image file; the message says which."""


@dataclass(frozen=True)
class Prediction:
    path: Path
    probabilities: tuple[float, ...] | None  # one per class, in the model's class order
    error: str | None = None  # why the file could not be classified

    @property
    def label(self) -> int | None:
        """Index of the likelier class, or None for a file that could not be classified."""
        if self.probabilities is None:
            return None
        return max(range(len(self.probabilities)), key=self.probabilities.__getitem__)


def image_paths(arguments: Iterable[str | Path]) -> list[Entry]:
    """The files to classify, in argument order, as a shell with globbing would pass them.

    A file is taken as given, even a missing one (its prediction says so); a folder gives every
    image file in it and below it, sorted, and its links and folders that were not followed
    (SkippedFile, with the reason); a pattern gives its matches, sorted, each then taken as a
    file or a folder ('**' matches files in any folder below, each once, as a folder is walked).
    A folder without images or a pattern without matches is an error.
    """
    paths: list[Entry] = []
    for argument in arguments:
        text = str(argument)
        path = Path(text)
        if path.is_dir():
            paths += images_in_folder(path)
        elif not path.exists() and GLOB_CHARACTERS & set(text):
            if "**" in path.parts:
                matches = _recursive_matches(path)
            else:
                matches = image_paths(sorted(glob.glob(text)))
            if not matches:
                raise ImagePathError(f"{printable(text)}: no file matches this pattern")
            paths += matches
        else:
            paths.append(path)
    return paths


def images_in_folder(folder: Path) -> list[Entry]:
    """Image files (by suffix) in `folder` and below, and the folders in it that were not
    entered, with the reason (see catdog.folders); sorted, hidden files and folders left out."""
    walk = walk_folder(folder)
    found = [path for path in walk.files if path.suffix.lower() in IMAGE_SUFFIXES]
    if not found and not walk.skipped:
        raise ImagePathError(
            f"{printable(folder)}: no image files in this folder or below it "
            f"(looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return sorted([*found, *walk.skipped], key=lambda entry: imagefolder_order(_entry_path(entry)))


def _recursive_matches(pattern: Path) -> list[Entry]:
    """The files a pattern with '**' matches, and the folders below its fixed start that were
    not entered. Walked with catdog.folders, not glob: glob's '**' follows a link back to a
    folder that holds it some 40 levels deep, and two such links for ever (2 ** 40 paths)."""
    parts = pattern.parts
    fixed = next(i for i, part in enumerate(parts) if GLOB_CHARACTERS & set(part))
    start, rest = Path(*parts[:fixed]), parts[fixed:]  # Path() is the current folder
    if not start.is_dir():
        return []
    walk = walk_folder(start)
    found = [p for p in walk.files if _match(p.relative_to(start).parts, rest)]
    folders = (*rest[:-1], "**")  # a skipped entry where matches could have been
    found += [s for s in walk.skipped if _match(s.path.relative_to(start).parts, folders)]
    return sorted(found, key=lambda entry: imagefolder_order(_entry_path(entry)))


def _match(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Whether path parts match pattern parts: '**' any number of parts, else fnmatch each."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_match(parts[i:], pattern[1:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], pattern[0]) and _match(parts[1:], pattern[1:])


def _entry_path(entry: Entry) -> Path:
    return entry.path if isinstance(entry, SkippedFile) else entry


def classify_files(
    model: CatDogCNN,
    paths: list[Entry],
    *,
    batch_size: int = 64,
    precision: str = "fp32",
    threads: int | None = None,
) -> Iterator[Prediction]:
    """One Prediction per path, in order; files that cannot be decoded carry the reason, as do
    the SkippedFile entries of image_paths."""
    with ThreadPoolExecutor(max_workers=threads or usable_cores()) as pool:
        for batch, decoded in _decoded_batches(pool, paths, model.image_size, batch_size):
            pixels = [item for item in decoded if isinstance(item, np.ndarray)]
            probabilities = iter([])
            if pixels:
                images = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2)  # (B, 3, S, S)
                probabilities = iter(predict_probabilities(model, images, precision).tolist())
            for entry, item in zip(batch, decoded, strict=True):
                if isinstance(item, str):
                    yield Prediction(_entry_path(entry), None, item)
                else:
                    yield Prediction(entry, tuple(next(probabilities)))


def _decoded_batches(
    pool: ThreadPoolExecutor, paths: list[Entry], image_size: int, batch_size: int
) -> Iterator[tuple[list[Entry], list[np.ndarray | str]]]:
    """Each batch's paths and their pixels (S, S, 3) or the reason they have none.

    The next batch is decoding while the caller classifies this one; no more are started.
    """
    started: deque[tuple[list[Entry], list[Future]]] = deque()
    for start in range(0, len(paths), batch_size):
        batch = paths[start : start + batch_size]
        started.append((batch, [pool.submit(_decode, path, image_size) for path in batch]))
        if len(started) == 2:
            batch, futures = started.popleft()
            yield batch, [future.result() for future in futures]
    for batch, futures in started:
        yield batch, [future.result() for future in futures]


def _decode(entry: Entry, image_size: int) -> np.ndarray | str:
    if isinstance(entry, SkippedFile):
        return entry.reason
    return decode_or_reason(entry, image_size)  # never raises for a file's own failure
