"""Find the image files of a data set in the Kaggle `chetankv/dogs-cats-images` layout.

    ROOT/training_set/cats/*.jpg   ROOT/training_set/dogs/*.jpg
    ROOT/test_set/cats/*.jpg       ROOT/test_set/dogs/*.jpg

ROOT may also hold those two folders one level down (the Kaggle archive unpacks to
`dataset/training_set`, ...). Files are listed class by class in the order torchvision's
ImageFolder lists them, so that "no shuffle" means the report's class-sorted order; links to
folders inside a class folder are followed as ImageFolder follows them (see catdog.folders).
Hidden files and folders (`.DS_Store`, `._x.jpg`, `.ipynb_checkpoints/`), system files
(`Thumbs.db`) and files outside the class folders are not part of the set: a listing names them as
ignored, so `data check` can show them, but they are never decoded, warned about or cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from catdog.errors import CatdogError
from catdog.folders import FolderId, SkippedFile, real_folders, walk_folder
from catdog.names import printable

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
class SplitListing:
    files: list[ImageFile]
    # In a class folder but plainly not an image, a link to nothing, a folder not entered: the
    # user is told.
    skipped: list[SkippedFile]
    ignored: list[SkippedFile] = field(default_factory=list)  # not part of the set at all


def _is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


def find_dataset_root(root: Path) -> Path:
    """The folder holding training_set/ and test_set/: ROOT itself or one level below it."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"data folder {printable(root)} does not exist")
    candidates = [root] + sorted(p for p in root.iterdir() if p.is_dir() and not _is_hidden(p))
    for candidate in candidates:
        if all((candidate / split).is_dir() for split in SPLITS):
            return candidate
    raise DatasetError(
        f"{printable(root)} is not a data set: expected {SPLITS[0]}/ and {SPLITS[1]}/ with cats/ "
        "and dogs/ inside, in the folder or one level below it"
    )


def list_split(split_dir: Path) -> SplitListing:
    """Image files of one split, class-sorted, and the files left out.

    Files in a class folder that are plainly not images, and folders in it that were not
    entered (a link loop, a folder listed twice, one that cannot be read) are `skipped` (the
    user is warned); hidden, system and stray entries are `ignored` (not part of the set).
    """
    entries = sorted(split_dir.iterdir())
    class_dirs = [p for p in entries if p.is_dir() and not _is_hidden(p)]
    found = [printable(p.name) for p in class_dirs]
    if found != list(CLASS_FOLDERS):
        raise DatasetError(
            f"{printable(split_dir)} must hold exactly the class folders cats/ and dogs/, "
            f"found: {', '.join(found) or 'none'}"
        )
    files: list[ImageFile] = []
    skipped: list[SkippedFile] = []
    ignored = [_ignored(p) for p in entries if p not in class_dirs]
    # A link in one class folder to (a folder in) the other must not relabel its images.
    entered: dict[FolderId, Path] = {}
    for class_dir in class_dirs:
        entered |= real_folders(class_dir)
    for label, class_dir in enumerate(class_dirs):
        walk = walk_folder(class_dir, entered)
        skipped += walk.skipped
        ignored += [_ignored(path) for path in walk.hidden]
        for path in walk.files:
            if path.name.lower() in IGNORED_NAMES:
                ignored.append(_ignored(path))
            elif path.suffix.lower() not in IMAGE_SUFFIXES:
                suffix = printable(path.suffix) or "no suffix"
                skipped.append(SkippedFile(path, f"not an image file ({suffix})"))
            else:
                files.append(ImageFile(path, label))
    return SplitListing(files, sorted(skipped, key=lambda item: item.path), ignored)


def _ignored(path: Path) -> SkippedFile:
    """Why an entry is not part of the set; a hidden folder is named once, with its file count."""
    if path.is_dir() and path.is_symlink():
        return SkippedFile(path, "hidden link to a folder")  # not followed: it may lead anywhere
    if path.is_dir():
        count = sum(1 for p in path.rglob("*") if not p.is_dir())
        return SkippedFile(path, f"hidden folder ({count} file{'s' * (count != 1)})")
    if path.name.lower() in IGNORED_NAMES:
        return SkippedFile(path, "system file")
    if _is_hidden(path):
        return SkippedFile(path, "hidden file")
    return SkippedFile(path, "not in a class folder")
