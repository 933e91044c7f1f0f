"""Classify many image files with a trained model: in batches, in order, in bounded memory.

The files come from what a user names: files as they are, folders (every image in them and
below, hidden entries skipped) and glob patterns the shell left alone (a quoted 'photos/*.jpg').
Threads decode one batch while the model classifies the one before it (Pillow releases the GIL,
as in catdog.cache), so at most two batches of pixels are held at once, however many files.
"""

from __future__ import annotations

import glob
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from catdog.cores import usable_cores
from catdog.dataset import IMAGE_SUFFIXES
from catdog.errors import CatdogError
from catdog.images import ImageDecodeError, decode_image
from catdog.model import CatDogCNN
from catdog.train import predict_probabilities

GLOB_CHARACTERS = frozenset("*?[")


class ImagePathError(CatdogError, ValueError):
    """A folder or pattern that names no image file; the message says which."""


@dataclass(frozen=True)
class Prediction:
    path: Path
    probabilities: tuple[float, ...] | None  # one per class, in CLASS_NAMES order
    error: str | None = None  # why the file could not be classified

    @property
    def label(self) -> int | None:
        """Index of the likelier class, or None for a file that could not be classified."""
        if self.probabilities is None:
            return None
        return max(range(len(self.probabilities)), key=self.probabilities.__getitem__)


def image_paths(arguments: Iterable[str | Path]) -> list[Path]:
    """The files to classify, in argument order, as a shell with globbing would pass them.

    A file is taken as given, even a missing one (its prediction says so); a folder gives every
    image file in it and below it, sorted; a pattern gives its matches, sorted, each then taken
    as a file or a folder. A folder without images or a pattern without matches is an error.
    """
    paths: list[Path] = []
    for argument in arguments:
        text = str(argument)
        path = Path(text)
        if path.is_dir():
            paths += images_in_folder(path)
        elif not path.exists() and GLOB_CHARACTERS & set(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise ImagePathError(f"{text}: no file matches this pattern")
            paths += image_paths(matches)
        else:
            paths.append(path)
    return paths


def images_in_folder(folder: Path) -> list[Path]:
    """Image files (by suffix) in `folder` and below, sorted; hidden files and folders skipped."""
    found = []
    for parent, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]
        found += [
            Path(parent) / name
            for name in files
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES
        ]
    if not found:
        raise ImagePathError(
            f"{folder}: no image files in this folder or below it "
            f"(looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return sorted(found)


def classify_files(
    model: CatDogCNN,
    paths: list[Path],
    *,
    batch_size: int = 64,
    precision: str = "fp32",
    threads: int | None = None,
) -> Iterator[Prediction]:
    """One Prediction per path, in order; files that cannot be decoded carry the reason."""
    with ThreadPoolExecutor(max_workers=threads or usable_cores()) as pool:
        for batch, decoded in _decoded_batches(pool, paths, model.image_size, batch_size):
            pixels = [item for item in decoded if isinstance(item, np.ndarray)]
            probabilities = iter([])
            if pixels:
                images = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2)  # (B, 3, S, S)
                probabilities = iter(predict_probabilities(model, images, precision).tolist())
            for path, item in zip(batch, decoded, strict=True):
                if isinstance(item, str):
                    yield Prediction(path, None, item)
                else:
                    yield Prediction(path, tuple(next(probabilities)))


def _decoded_batches(
    pool: ThreadPoolExecutor, paths: list[Path], image_size: int, batch_size: int
) -> Iterator[tuple[list[Path], list[np.ndarray | str]]]:
    """Each batch's paths and their pixels (S, S, 3) or the reason they have none.

    The next batch is decoding while the caller classifies this one; no more are started.
    """
    started: deque[tuple[list[Path], list[Future]]] = deque()
    for start in range(0, len(paths), batch_size):
        batch = paths[start : start + batch_size]
        started.append((batch, [pool.submit(_decode, path, image_size) for path in batch]))
        if len(started) == 2:
            batch, futures = started.popleft()
            yield batch, [future.result() for future in futures]
    for batch, futures in started:
        yield batch, [future.result() for future in futures]


def _decode(path: Path, image_size: int) -> np.ndarray | str:
    try:
        return decode_image(path, image_size)
    except ImageDecodeError as error:
        return str(error)
    except FileNotFoundError:
        return "no such file"
    except IsADirectoryError:
        return "a folder"
    except OSError as error:
        return error.strerror or str(error)
