"""Find the image files of a data set in the Kaggle `chetankv/dogs-cats-images` layout.

    ROOT/training_set/cats/*.jpg   ROOT/training_set/dogs/*.jpg
    ROOT/test_set/cats/*.jpg       ROOT/test_set/dogs/*.jpg

ROOT may also hold those two folders one level down (the Kaggle archive unpacks to
`dataset/training_set`, ...). Files are listed class by class in sorted path order, exactly as
torchvision's ImageFolder lists them, so that "no shuffle" means the report's class-sorted order.
Hidden files and folders (`.DS_Store`, `._x.jpg`, `.ipynb_checkpoints/`), system files
(`Thumbs.db`) and files outside the class folders are not part of the set: a listing names them as
ignored, so `data check` can show them, but they are never decoded, warned about or cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from catdog.errors import CatdogError

SPLITS = ("training_set", "test_set")
CLASS_FOLDERS = ("cats", "dogs")  # folder name -> class index by position
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
IGNORED_NAMES = {"thumbs.db", "desktop.ini"}


class DatasetError(CatdogError, ValueError):
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
    skipped: list[SkippedFile]  # in a class folder but plainly not an image: the user is told
    ignored: list[SkippedFile] = field(default_factory=list)  # not part of the set at all


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
    """Image files of one split, class-sorted, and the files left out.

    Files in a class folder that are plainly not images are `skipped` (the user is warned);
    hidden, system and stray entries are `ignored` (they are not part of the set).
    """
    entries = sorted(split_dir.iterdir())
    class_dirs = [p for p in entries if p.is_dir() and not _is_hidden(p)]
    found = [p.name for p in class_dirs]
    if found != list(CLASS_FOLDERS):
        raise DatasetError(
            f"{split_dir} must hold exactly the class folders cats/ and dogs/, "
            f"found: {', '.join(found) or 'none'}"
        )
    files: list[ImageFile] = []
    skipped: list[SkippedFile] = []
    ignored = [_ignored(p) for p in entries if p not in class_dirs]
    for label, class_dir in enumerate(class_dirs):
        hidden_dirs: list[Path] = []
        for path in sorted(class_dir.rglob("*")):
            if any(path.is_relative_to(folder) for folder in hidden_dirs):
                continue
            if _is_hidden(path):
                if path.is_dir():
                    hidden_dirs.append(path)
                ignored.append(_ignored(path))
            elif path.is_dir():
                continue
            elif path.name.lower() in IGNORED_NAMES:
                ignored.append(_ignored(path))
            elif path.suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append(
                    SkippedFile(path, f"not an image file ({path.suffix or 'no suffix'})")
                )
            else:
                files.append(ImageFile(path, label))
    return SplitListing(files, skipped, ignored)


def _ignored(path: Path) -> SkippedFile:
    """Why an entry is not part of the set; a hidden folder is named once, with its file count."""
    if path.is_dir():
        count = sum(1 for p in path.rglob("*") if not p.is_dir())
        return SkippedFile(path, f"hidden folder ({count} file{'s' * (count != 1)})")
    if path.name.lower() in IGNORED_NAMES:
        return SkippedFile(path, "system file")
    if _is_hidden(path):
        return SkippedFile(path, "hidden file")
    return SkippedFile(path, "not in a class folder")
