"""Find the image files of a data set: a folder per split, and in each a folder per class.

    ROOT/training_set/<class>/*.jpg   ROOT/test_set/<class>/*.jpg     (Kaggle's layout)
    ROOT/train/<class>/*.jpg  [ROOT/val/<class>/*.jpg]  ROOT/test/<class>/*.jpg

The report's set is Kaggle's `chetankv/dogs-cats-images`, with the classes cats/ and dogs/; any
two or more class folders make a set, the same ones in every split (catdog.classes says how
they are ordered and named). A val/ folder beside train/ and test/ is the set's own validation
split. ROOT may also hold the split folders one level down (the Kaggle archive unpacks to
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

from catdog.classes import class_labels
from catdog.errors import CatdogError
from catdog.folders import FolderId, SkippedFile, real_folders, walk_folder
from catdog.names import printable

SPLITS = ("training_set", "test_set")  # Kaggle's (training, test) split folders
SHORT_SPLITS = ("train", "test")  # the common layout's, where a "val" folder may stand beside
VAL_SPLIT = "val"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
IGNORED_NAMES = {"thumbs.db", "desktop.ini"}


class DatasetError(CatdogError, ValueError):
    """A data folder that cannot be used; the message says what was found and what is expected."""


@dataclass(frozen=True)
class ImageFile:
    path: Path
    label: int  # index into the split's class folders, sorted


@dataclass(frozen=True)
class DatasetLayout:
    """Where a data set's splits are and which classes every one of them holds."""

    root: Path  # the folder holding the split folders
    train: str  # the training split's folder in root: "training_set" or "train"
    test: str  # "test_set" or "test"
    val: str | None  # "val" when the set has its own validation split
    classes: tuple[str, ...]  # class folder names, sorted as ImageFolder sorts them

    @property
    def splits(self) -> tuple[str, ...]:
        """The split folders, training first, then validation (if any), then test."""
        return tuple(split for split in (self.train, self.val, self.test) if split is not None)

    @property
    def labels(self) -> tuple[str, ...]:
        """Each class's label (catdog.classes.class_labels), in class order."""
        return class_labels(self.classes)


@dataclass(frozen=True)
class SplitListing:
    classes: tuple[str, ...]  # the class folders, in label order
    files: list[ImageFile]
    # In a class folder but plainly not an image, a link to nothing, a folder not entered: the
    # user is told.
    skipped: list[SkippedFile]
    ignored: list[SkippedFile] = field(default_factory=list)  # not part of the set at all


def _is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


def find_dataset_root(root: Path) -> Path:
    """The folder holding training_set/ and test_set/ (or train/ and test/): ROOT itself or
    the one folder below it that does. DatasetError when ROOT is not a folder, holds no data
    set, or holds several one level down (the message names them: which is meant is not
    for us to guess)."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"data folder {printable(root)} does not exist")
    if not root.is_dir():
        raise DatasetError(f"data folder {printable(root)} is a file, not a folder")
    if _split_pair(root) is not None:
        return root
    below = sorted(p for p in root.iterdir() if p.is_dir() and not _is_hidden(p))
    found = [folder for folder in below if _split_pair(folder) is not None]
    if len(found) == 1:
        return found[0]
    if found:
        raise DatasetError(
            f"{printable(root)} holds {len(found)} data sets, "
            f"{', '.join(printable(folder.name) + '/' for folder in found)}: give --data the "
            "one to use"
        )
    raise DatasetError(
        f"{printable(root)} is not a data set: expected {SPLITS[0]}/ and {SPLITS[1]}/ (or "
        f"{SHORT_SPLITS[0]}/ and {SHORT_SPLITS[1]}/) with a folder per class inside each "
        "(cats/ and dogs/ for the report's set), in the folder or one level below it"
    )


def _split_pair(folder: Path) -> tuple[str, str] | None:
    """The (training, test) split folders in `folder`, Kaggle's first, or None."""
    for pair in (SPLITS, SHORT_SPLITS):
        if all((folder / split).is_dir() for split in pair):
            return pair
    return None


def find_dataset(root: Path) -> DatasetLayout:
    """The data set in ROOT or one level below it: its split folders and its classes.

    Reads folder names only. DatasetError when there is none, when a split holds fewer than
    two class folders, or when the splits hold different ones (the message names them).
    """
    dataset_root = find_dataset_root(root)
    train, test = _split_pair(dataset_root)
    val = VAL_SPLIT if train == SHORT_SPLITS[0] and (dataset_root / VAL_SPLIT).is_dir() else None
    layout = DatasetLayout(dataset_root, train, test, val, class_folders(dataset_root / train))
    for split in layout.splits[1:]:
        found = class_folders(dataset_root / split)
        if found != layout.classes:
            raise DatasetError(_different_classes(layout, split, found))
    return layout


def class_folders(split_dir: Path) -> tuple[str, ...]:
    """The class folders in a split folder, sorted as ImageFolder sorts them; hidden ones are
    not classes. DatasetError when there are fewer than two."""
    found = tuple(sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not _is_hidden(p)))
    if len(found) < 2:
        held = f"only {printable(found[0])}/" if found else "no folder"
        raise DatasetError(
            f"{printable(split_dir)} holds {held}: a data set needs two or more classes, the "
            "images of each in a folder named after it (cats/ and dogs/ for the report's set)"
        )
    return found


def _different_classes(layout: DatasetLayout, split: str, found: tuple[str, ...]) -> str:
    """E.g. 'ROOT/test_set holds other class folders than training_set/: birds/ only in
    training_set/; fish/ only in test_set/; every split needs the same classes'."""
    only = [
        f"{', '.join(printable(name) + '/' for name in names)} only in {where}/"
        for names, where in (
            (sorted(set(layout.classes) - set(found)), layout.train),
            (sorted(set(found) - set(layout.classes)), split),
        )
        if names
    ]
    return (
        f"{printable(layout.root / split)} holds other class folders than {layout.train}/: "
        f"{'; '.join(only)}; every split needs the same classes"
    )


def list_split(split_dir: Path) -> SplitListing:
    """Image files of one split, class-sorted, and the files left out.

    Files in a class folder that are plainly not images, and folders in it that were not
    entered (a link loop, a folder listed twice, one that cannot be read) are `skipped` (the
    user is warned); hidden, system and stray entries are `ignored` (not part of the set).
    """
    classes = class_folders(split_dir)
    class_dirs = [split_dir / name for name in classes]
    entries = sorted(split_dir.iterdir())
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
    return SplitListing(classes, files, sorted(skipped, key=lambda item: item.path), ignored)


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
