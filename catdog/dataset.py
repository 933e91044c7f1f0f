"""Find the image files of a data set in the Kaggle `chetankv/dogs-cats-images` layout.

    ROOT/training_set/cats/*.jpg   ROOT/training_set/dogs/*.jpg
    ROOT/test_set/cats/*.jpg       ROOT/test_set/dogs/*.jpg

ROOT may also hold those two folders one level down (the Kaggle archive unpacks to
`dataset/training_set`, ...). Files are listed class by class in sorted path order, exactly as
torchvision's ImageFolder lists them, so that "no shuffle" means the report's class-sorted order.
Hidden files and folders (`.DS_Store`, `._x.jpg`, `.ipynb_checkpoints/`) are not part of the set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SPLITS = ("training_set", "test_set")
CLASS_FOLDERS = ("cats", "dogs")  # folder name -> class index by position
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
IGNORED_NAMES = {"thumbs.db", "desktop.ini"}


class DatasetError(ValueError):
    """A data folder that cannot be used; the message says what was found and what is expected."""


@dataclass(frozen=True)
class ImageFile:
    path: Path
    label: int  # index into CLASS_FOLDERS


@dataclass(frozen=True)
class SkippedFile:
    path: Path
    reason: str


@dataclass(frozen=True)
class SplitListing:
    files: list[ImageFile]
    skipped: list[SkippedFile]


def _is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


def find_dataset_root(root: Path) -> Path:
    """The folder holding training_set/ and test_set/: ROOT itself or one level below it."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"data folder {root} does not exist")
    candidates = [root] + sorted(p for p in root.iterdir() if p.is_dir() and not _is_hidden(p))
    for candidate in candidates:
        if all((candidate / split).is_dir() for split in SPLITS):
            return candidate
    raise DatasetError(
        f"{root} is not a data set: expected {SPLITS[0]}/ and {SPLITS[1]}/ with cats/ and dogs/ "
        "inside, in the folder or one level below it"
    )


def list_split(split_dir: Path) -> SplitListing:
    """Image files of one split, class-sorted, and the files that are plainly not images."""
    class_dirs = sorted(p for p in split_dir.iterdir() if p.is_dir() and not _is_hidden(p))
    found = [p.name for p in class_dirs]
    if found != list(CLASS_FOLDERS):
        raise DatasetError(
            f"{split_dir} must hold exactly the class folders cats/ and dogs/, "
            f"found: {', '.join(found) or 'none'}"
        )
    files: list[ImageFile] = []
    skipped: list[SkippedFile] = []
    for label, class_dir in enumerate(class_dirs):
        for path in sorted(class_dir.rglob("*")):
            relative = path.relative_to(class_dir)
            if any(part.startswith(".") for part in relative.parts) or path.is_dir():
                continue
            if path.name.lower() in IGNORED_NAMES:
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append(
                    SkippedFile(path, f"not an image file ({path.suffix or 'no suffix'})")
                )
                continue
            files.append(ImageFile(path, label))
    return SplitListing(files, skipped)
