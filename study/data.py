"""Which data set a study trains on, at which size, loaded once per process onto the device.

With a validation fraction F > 0, a stratified, seeded F of each class of the training set is
held out: trials train on the rest and are judged on it, and the test set is kept for the end.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from catdog.cache import ImageSet, is_cached, warn_skipped
from catdog.dataset import CLASS_FOLDERS, SPLITS, DatasetError, find_dataset_root
from catdog.scan import DatasetScan, scan_dataset
from catdog.synthetic import read_manifest, write_synthetic_dataset
from catdog.train import DeviceImages
from study.objective import StudyData

REAL_DATA_DIR = Path("storage/data/dogs-cats-images")  # where `data download` puts Kaggle's set
SYNTHETIC_DIR = Path("storage/data/synthetic")
CACHE_DIR = Path("storage/cache")
REAL_IMAGE_SIZE = 256  # the report's size


def resolve_data(spec: str | None, echo=print) -> Path:
    """The data folder for --data: a path, 'synthetic', or None for real data when present."""
    if spec is None:
        if REAL_DATA_DIR.is_dir():
            return REAL_DATA_DIR
        echo(f"no real data in {REAL_DATA_DIR}: using the SYNTHETIC set in {SYNTHETIC_DIR}")
        spec = "synthetic"
    if spec == "synthetic":
        if not SYNTHETIC_DIR.exists():
            echo(f"writing the synthetic data set (shapes, not cats and dogs) to {SYNTHETIC_DIR}")
            write_synthetic_dataset(SYNTHETIC_DIR)
        return SYNTHETIC_DIR
    return Path(spec)


def default_image_size(root: Path) -> int:
    """The synthetic set's own size (64 px), else the report's 256 px."""
    spec = read_manifest(root)
    return spec.image_size if spec is not None else REAL_IMAGE_SIZE


def describe_data(root: Path, image_size: int) -> str:
    kind = "SYNTHETIC shapes" if read_manifest(root) is not None else "images"
    return f"{kind} from {root}, {image_size} px"


def cache_dir_for(root: Path) -> Path:
    """One cache folder per data folder, named after it and its absolute path."""
    resolved = Path(root).resolve()
    tag = hashlib.sha256(str(resolved).encode()).hexdigest()[:8]
    return CACHE_DIR / f"{resolved.name}-{tag}"


def scan_data(root: Path, image_size: int) -> DatasetScan:
    """Both splits of the data set at `root` through its cache: what `data check` shows."""
    dataset_root = find_dataset_root(root)
    return scan_dataset(dataset_root, image_size, cache_dir_for(dataset_root))


def prepare_data(root: Path, image_size: int, echo=print) -> bool:
    """Decode both splits into the cache unless it already holds them; True when it decoded.

    Worker processes started together would otherwise each decode the whole set at once.
    """
    dataset_root = find_dataset_root(root)
    cache_dir = cache_dir_for(dataset_root)
    if all(is_cached(dataset_root / split, image_size, cache_dir) for split in SPLITS):
        return False
    echo(f"decoding {dataset_root} at {image_size} px once for all workers, into {cache_dir}")
    scan_data(root, image_size).require_every_class()
    return True


def load_study_data(
    root: Path,
    image_size: int,
    device: torch.device,
    *,
    val_fraction: float = 0.0,
    seed: int = 0,
) -> StudyData:
    """Both splits decoded (or read from the cache) and moved to `device`.

    With val_fraction > 0 the training set is split into a training and a validation part
    (see validation_split), seeded by `seed`.
    """
    scan = scan_data(root, image_size)
    scan.require_every_class()
    train_set, test_set = (scan.splits[split] for split in SPLITS)
    for image_set in (train_set, test_set):
        warn_skipped(image_set.skipped)
    val_set = None
    if val_fraction > 0:
        train_index, val_index = validation_split(train_set.labels, val_fraction, seed)
        train_set, val_set = _subset(train_set, train_index), _subset(train_set, val_index)
    return StudyData(
        train=DeviceImages.from_image_set(train_set, device),
        test=DeviceImages.from_image_set(test_set, device),
        description=describe_data(root, image_size),
        val=None if val_set is None else DeviceImages.from_image_set(val_set, device),
    )


def validation_split(
    labels: torch.Tensor, fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (training part, validation part) of a stratified split seeded by `seed`.

    Each class gives round(fraction * its size) images, drawn at random, to the validation part.
    Both index lists are ascending, so the training part keeps the class-sorted file order that
    shuffle=false trains in.
    """
    generator = torch.Generator().manual_seed(seed)
    held_out = []
    for label in labels.unique(sorted=True).tolist():
        members = (labels == label).nonzero().flatten()
        count = round(fraction * len(members))
        if not 0 < count < len(members):
            name = CLASS_FOLDERS[label]
            raise DatasetError(
                f"--val-fraction {fraction:g} of the {len(members)} {name} training images "
                f"leaves {count} for validation and {len(members) - count} for training; "
                "each part needs at least one"
            )
        order = torch.randperm(len(members), generator=generator)
        held_out.append(members[order[:count]])
    val_index = torch.cat(held_out).sort().values
    in_training = torch.ones(len(labels), dtype=torch.bool)
    in_training[val_index] = False
    return in_training.nonzero().flatten(), val_index


def _subset(image_set: ImageSet, index: torch.Tensor) -> ImageSet:
    return ImageSet(
        image_set.images[index],
        image_set.labels[index],
        [image_set.paths[i] for i in index.tolist()],
        image_set.skipped,
    )
