import os
import shutil

import pytest
import torch
from PIL import Image

import catdog.cache as cache
from catdog.cache import is_cached, read_split


@pytest.fixture
def split(tmp_path, tiny_dataset):
    copy = tmp_path / "data"
    shutil.copytree(tiny_dataset, copy)
    return copy / "training_set"


def test_split_becomes_one_uint8_tensor_in_file_order(split, tmp_path):
    image_set = read_split(split, 64, tmp_path / "cache")
    assert image_set.images.shape == (40, 3, 64, 64)
    assert image_set.images.dtype == torch.uint8
    assert image_set.labels.tolist() == [0] * 20 + [1] * 20  # class-sorted, cats first
    assert image_set.paths == sorted(image_set.paths, key=lambda p: ("dogs" in p, p))


def test_cache_is_reused_while_files_are_unchanged(split, tmp_path, monkeypatch):
    first = read_split(split, 64, tmp_path / "cache")
    monkeypatch.setattr(cache, "decode_or_reason", _fail_if_called)
    second = read_split(split, 64, tmp_path / "cache")
    assert torch.equal(first.images, second.images)
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 1


def test_cache_is_rebuilt_when_one_file_changes(split, tmp_path):
    first = read_split(split, 64, tmp_path / "cache")
    changed = split / "cats" / sorted(os.listdir(split / "cats"))[0]
    Image.new("RGB", (90, 90), (255, 255, 255)).save(changed)
    second = read_split(split, 64, tmp_path / "cache")
    assert not torch.equal(first.images[0], second.images[0])
    assert (second.images[0] == 255).all()
    # The stale cache file of the old contents is gone: one file per split and size.
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 1


def test_is_cached_says_whether_a_load_would_decode(split, tmp_path):
    cache_dir = tmp_path / "cache"
    assert not is_cached(split, 64, cache_dir)
    read_split(split, 64, cache_dir)
    assert is_cached(split, 64, cache_dir)
    assert not is_cached(split, 128, cache_dir)  # another size is another cache
    victim = next((split / "cats").iterdir())
    victim.write_bytes(victim.read_bytes() + b"\0")  # an edited file makes the cache stale
    assert not is_cached(split, 64, cache_dir)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_cache_file_is_rebuilt(split, tmp_path, damage):
    cache_dir = tmp_path / "cache"
    first = read_split(split, 64, cache_dir)
    (cache_file,) = cache_dir.glob("*.safetensors")
    whole = cache_file.read_bytes()
    cache_file.write_bytes(b"not a safetensors file" if damage == "garbage" else whole[:-100])
    assert not is_cached(split, 64, cache_dir)
    second = read_split(split, 64, cache_dir)
    assert torch.equal(first.images, second.images)
    assert is_cached(split, 64, cache_dir)  # and the rebuilt file is whole again


def test_undecodable_file_is_skipped_with_a_warning_naming_it(split, tmp_path):
    broken = split / "dogs" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with pytest.warns(UserWarning, match="broken.jpg"):
        image_set = read_split(split, 64, tmp_path / "cache")
    assert len(image_set) == 40
    assert [s.path.name for s in image_set.skipped] == ["broken.jpg"]
    with pytest.warns(UserWarning, match="broken.jpg"):  # also when read back from the cache
        read_split(split, 64, tmp_path / "cache")


def _fail_if_called(*_args, **_kwargs):
    raise AssertionError("the cache should have been used")


def test_a_name_that_is_not_utf8_is_listed_cached_decoded_and_named(split, tmp_path, monkeypatch):
    latin_1 = split / os.fsdecode(b"cats/chat_\xe9t\xe9.jpg")  # as `unzip` leaves it on Linux
    shutil.copy(next((split / "cats").iterdir()), latin_1)
    broken = split / os.fsdecode(b"dogs/chien_\xe9t\xe9.jpg")
    broken.write_bytes(b"")
    with pytest.warns(UserWarning) as warned:
        first = read_split(split, 64, tmp_path / "cache")
    assert str(latin_1) in first.paths and len(first) == 41
    assert [str(w.message) for w in warned] == [
        f"skipped {split}/dogs/chien_\\xe9t\\xe9.jpg: empty file"
    ]
    monkeypatch.setattr(cache, "decode_or_reason", _fail_if_called)
    with pytest.warns(UserWarning, match=r"chien_\\xe9t\\xe9\.jpg: empty file"):
        second = read_split(split, 64, tmp_path / "cache")  # from the cache
    assert second.paths == first.paths and torch.equal(second.images, first.images)
    assert [s.path for s in second.skipped] == [broken]


def test_links_that_lead_nowhere_are_skipped_and_the_cache_still_works(split, tmp_path):
    (split / "dogs" / "gone.jpg").symlink_to("missing.jpg")
    with pytest.warns(UserWarning, match="gone.jpg: a link to missing.jpg, which does not exist"):
        image_set = read_split(split, 64, tmp_path / "cache")
    assert len(image_set) == 40
    assert is_cached(split, 64, tmp_path / "cache")
