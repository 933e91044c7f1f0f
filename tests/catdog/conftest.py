"""Fixtures of the catdog tests."""

from pathlib import Path

import pytest
import torch

from catdog.cache import read_split
from catdog.train import DeviceImages


def _splits(root: Path, cache: Path) -> tuple[DeviceImages, DeviceImages]:
    return tuple(
        DeviceImages.from_image_set(read_split(root / s, 64, cache), torch.device("cpu"))
        for s in ("training_set", "test_set")
    )


@pytest.fixture(scope="module")
def shape_splits(tiny_shapes: Path, tmp_path_factory) -> tuple[DeviceImages, DeviceImages]:
    """The three-class tiny set's training and test splits at 64 px, on the CPU."""
    return _splits(tiny_shapes, tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def splits(tiny_dataset: Path, tmp_path_factory) -> tuple[DeviceImages, DeviceImages]:
    """The tiny set's training and test splits at 64 px, on the CPU."""
    return _splits(tiny_dataset, tmp_path_factory.mktemp("cache"))
