"""Fixtures of the catdog tests."""

from pathlib import Path

import pytest
import torch

from catdog.cache import read_split
from catdog.train import DeviceImages


@pytest.fixture(scope="module")
def splits(tiny_dataset: Path, tmp_path_factory) -> tuple[DeviceImages, DeviceImages]:
    """The tiny set's training and test splits at 64 px, on the CPU."""
    cache = tmp_path_factory.mktemp("cache")
    return tuple(
        DeviceImages.from_image_set(read_split(tiny_dataset / s, 64, cache), torch.device("cpu"))
        for s in ("training_set", "test_set")
    )
