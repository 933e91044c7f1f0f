"""Model files as `export` writes them, made directly rather than by training a study."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from catdog.config import TrainConfig
from catdog.model import CatDogCNN
from catdog.modelfile import save_model_file, write_checksum

SYNTHETIC_DATA = "SYNTHETIC shapes from storage/data/synthetic, 64 px"
PHOTO_DATA = "images from storage/data/dogs-cats-images, 64 px"


@pytest.fixture
def make_model(tmp_path):
    """make_model(name, data=...) -> the path of a 64 px model file with its PATH.sha256."""

    def make(name: str = "model.safetensors", *, data: str = SYNTHETIC_DATA) -> Path:
        torch.manual_seed(0)
        path = tmp_path / name
        sha256 = save_model_file(
            path,
            CatDogCNN(64),
            study="catdog",
            trial=7,
            params={"optimizer": "adam", "lr": 0.00296, "shuffle": True, "epochs": 12},
            config=TrainConfig(lr=0.00296, epochs=12).to_dict(),
            seed=7,
            precision="fp32",
            data=data,
            metrics={"test_loss": 0.0712, "test_accuracy": 0.975, "epochs": 12},
        )
        write_checksum(path, sha256)
        return path

    return make
