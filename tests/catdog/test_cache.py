import os
import shutil

import pytest
import torch
from PIL import Image

import catdog.cache as cache
from catdog.cache import load_split


@pytest.fixture
def split(tmp_path, tiny_dataset):
    copy = tmp_path / "data"
    shutil.copytree(tiny_dataset, copy)
    return copy / "training_set"


def test_split_becomes_one_uint8_tensor_in_file_order(split, tmp_path):
    image_set = load_split(split, 64, tmp_path / "cache")
    assert image_set.images.shape == (40, 3, 64, 64)
    assert image_set.images.dtype == torch.uint8
    assert image_set.labels.tolist() == [0] * 20 + [1] * 20  # class-sorted, cats first
    assert image_set.paths == sorted(image_set.paths, key=lambda p: ("dogs" in p, p))


def test_cache_is_reused_while_files_are_unchanged(split, tmp_path, monkeypatch):
    first = load_split(split, 64, tmp_path / "cache")
    monkeypatch.setattr(cache, "decode_image", _fail_if_called)
    second = load_split(split, 64, tmp_path / "cache")
    assert torch.equal(first.images, second.images)
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 1


def test_cache_is_rebuilt_when_one_file_changes(split, tmp_path):
    first = load_split(split, 64, tmp_path / "cache")
    changed = split / "cats" / sorted(os.listdir(split / "cats"))[0]
    Image.new("RGB", (90, 90), (255, 255, 255)).save(changed)
    second = load_split(split, 64, tmp_path / "cache")
    assert not torch.equal(first.images[0], second.images[0])
    assert (second.images[0] == 255).all()
    # The stale cache file of the old contents is gone: one file per split and size.
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 1


def test_undecodable_file_is_skipped_with_a_warning_naming_it(split, tmp_path):
    broken = split / "dogs" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with pytest.warns(UserWarning, match="broken.jpg"):
        image_set = load_split(split, 64, tmp_path / "cache")
    assert len(image_set) == 40
    assert [s.path.name for s in image_set.skipped] == ["broken.jpg"]
    with pytest.warns(UserWarning, match="broken.jpg"):  # also when read back from the cache
        load_split(split, 64, tmp_path / "cache")


def _fail_if_called(*_args, **_kwargs):
    raise AssertionError("the cache should have been used")
