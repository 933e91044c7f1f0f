"""A whole data set as training sees it: every split decoded, every file left out, and why.

`data check` prints a scan and training loads one, through the same function, so the two never
disagree on which images are used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from catdog.cache import DecodeProgress, ImageSet, read_split
from catdog.dataset import DatasetError, DatasetLayout
from catdog.names import printable


@dataclass(frozen=True)
class DatasetScan:
    layout: DatasetLayout  # where the splits are, and their classes
    splits: dict[str, ImageSet]  # by split folder name, in layout.splits order

    @property
    def root(self) -> Path:
        """The folder holding the split folders."""
        return self.layout.root

    def class_counts(self, split: str) -> list[int]:
        """Usable images of each class of `split`, in class order."""
        labels = self.splits[split].labels
        return [int((labels == label).sum()) for label in range(len(self.layout.classes))]

    def empty_classes(self) -> list[Path]:
        """Class folders left with no usable image."""
        return [
            self.root / split / name
            for split in self.splits
            for name, count in zip(self.layout.classes, self.class_counts(split), strict=True)
            if count == 0
        ]

    def require_every_class(self) -> None:
        """Raise DatasetError naming each class folder that has no usable image."""
        empty = self.empty_classes()
        if empty:
            raise DatasetError(
                f"{' and '.join(printable(p) for p in empty)} "
                f"hold{'s' * (len(empty) == 1)} no usable image"
            )


def read_dataset(
    layout: DatasetLayout,
    image_size: int,
    cache_dir: Path | None,
    on_decoded: DecodeProgress | None = None,
    *,
    write_cache: bool = True,
) -> DatasetScan:
    """Every split of the data set (see find_dataset) decoded at `image_size` px.

    Skipped files are listed in the scan, not warned about: the caller says what they mean.
    on_decoded: told how far the decoding of each split has got (see read_split);
    write_cache: False to decode a split that is not in the cache without keeping it.
    DatasetError when a split's class folders changed since `layout` was read.
    """
    splits = {}
    for split in layout.splits:
        image_set = read_split(
            layout.root / split,
            image_size,
            cache_dir,
            warn=False,
            on_decoded=on_decoded,
            write_cache=write_cache,
        )
        if image_set.classes != layout.classes:  # its labels would mean other classes
            raise DatasetError(f"the class folders in {printable(layout.root / split)} changed")
        splits[split] = image_set
    return DatasetScan(layout, splits)
