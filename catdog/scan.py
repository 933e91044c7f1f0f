"""A whole data set as training sees it: both splits decoded, every file left out, and why.

`data check` prints a scan and training loads one, through the same function, so the two never
disagree on which images are used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from catdog.cache import DecodeProgress, ImageSet, read_split
from catdog.dataset import CLASS_FOLDERS, SPLITS, DatasetError
from catdog.names import printable


@dataclass(frozen=True)
class DatasetScan:
    root: Path  # the folder holding training_set/ and test_set/
    splits: dict[str, ImageSet]  # by split folder name, in SPLITS order

    def class_counts(self, split: str) -> list[int]:
        """Usable images of each class of `split`, in CLASS_FOLDERS order."""
        labels = self.splits[split].labels
        return [int((labels == label).sum()) for label in range(len(CLASS_FOLDERS))]

    def empty_classes(self) -> list[Path]:
        """Class folders left with no usable image."""
        return [
            self.root / split / name
            for split in self.splits
            for name, count in zip(CLASS_FOLDERS, self.class_counts(split), strict=True)
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
    dataset_root: Path,
    image_size: int,
    cache_dir: Path | None,
    on_decoded: DecodeProgress | None = None,
) -> DatasetScan:
    """Both splits of `dataset_root` (see find_dataset_root) decoded at `image_size` px.

    Skipped files are listed in the scan, not warned about: the caller says what they mean.
    on_decoded: told how far the decoding of each split has got (see read_split).
    """
    splits = {
        split: read_split(
            dataset_root / split, image_size, cache_dir, warn=False, on_decoded=on_decoded
        )
        for split in SPLITS
    }
    return DatasetScan(dataset_root, splits)
