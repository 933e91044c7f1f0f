"""Which data set a study trains on, at which size, loaded once per process onto the device."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from catdog.cache import load_split
from catdog.dataset import SPLITS, DatasetError, find_dataset_root
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


def load_study_data(root: Path, image_size: int, device: torch.device) -> StudyData:
    """Both splits decoded (or read from the cache) and moved to `device`."""
    dataset_root = find_dataset_root(root)
    cache = cache_dir_for(dataset_root)
    train_set, test_set = (load_split(dataset_root / s, image_size, cache) for s in SPLITS)
    for split, image_set in zip(SPLITS, (train_set, test_set), strict=True):
        if len(image_set) == 0:
            raise DatasetError(f"{dataset_root / split} holds no usable image")
    return StudyData(
        train=DeviceImages.from_image_set(train_set, device),
        test=DeviceImages.from_image_set(test_set, device),
        description=describe_data(root, image_size),
    )
