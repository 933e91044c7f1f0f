import pickle

import pytest
import torch

from catdog.model import CatDogCNN
from catdog.modelfile import ModelFileError, load_model_file, save_model_file


@pytest.fixture
def model_path(tmp_path):
    path = tmp_path / "model.safetensors"
    sha256 = save_model_file(path, CatDogCNN(64), trial=3, metrics={"test_accuracy": 0.5})
    return path, sha256


def test_model_file_round_trip_rebuilds_the_same_network(model_path):
    path, sha256 = model_path
    loaded = load_model_file(path, expected_sha256=sha256)
    assert loaded.image_size == 64 and loaded.info["trial"] == 3
    assert loaded.info["class_names"] == ["cat", "dog"]
    images = torch.rand(2, 3, 64, 64)
    again = load_model_file(path)
    assert torch.equal(loaded.model(images), again.model(images))


def test_one_flipped_byte_is_refused(model_path):
    path, sha256 = model_path
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01  # inside the last tensor's bytes
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="SHA-256 does not match"):
        load_model_file(path, expected_sha256=sha256)
    # Without a recorded SHA-256 the digest stored with the weights still catches it.
    with pytest.raises(ModelFileError, match="do not match the digest"):
        load_model_file(path)


def test_truncated_file_is_refused(model_path):
    path, _ = model_path
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(ModelFileError, match="not a readable safetensors model file"):
        load_model_file(path)


class _WritesMarker:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_is_never_unpickled(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(_WritesMarker(marker)))
    with pytest.raises(ModelFileError):
        load_model_file(path)
    assert not marker.exists()
