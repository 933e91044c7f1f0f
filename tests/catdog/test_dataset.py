from pathlib import Path

import pytest
from PIL import Image

from catdog.dataset import DatasetError, find_dataset_root, list_split


def _image(path: Path, colour=(200, 10, 10)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (30, 20), colour).save(path)
    return path


def test_nested_layout_is_found(tmp_path):
    for split in ("training_set", "test_set"):
        for folder in ("cats", "dogs"):
            _image(tmp_path / "dataset" / split / folder / "a.jpg")
    assert find_dataset_root(tmp_path) == tmp_path / "dataset"


def test_folder_without_the_layout_is_refused_with_what_is_expected(tmp_path):
    (tmp_path / "pictures").mkdir()
    with pytest.raises(DatasetError, match="training_set/ and test_set/"):
        find_dataset_root(tmp_path)


def test_listing_is_class_sorted_like_imagefolder(tmp_path):
    split = tmp_path / "training_set"
    for name in ("dog.2.jpg", "dog.10.jpg", "dog.1.jpg"):
        _image(split / "dogs" / name)
    for name in ("cat.b.jpg", "cat.a.jpg"):
        _image(split / "cats" / name)
    _image(split / "cats" / ".hidden.jpg")
    (split / "cats" / "notes.txt").write_text("not an image")
    listing = list_split(split)
    assert [(f.path.name, f.label) for f in listing.files] == [
        ("cat.a.jpg", 0),
        ("cat.b.jpg", 0),
        ("dog.1.jpg", 1),
        ("dog.10.jpg", 1),
        ("dog.2.jpg", 1),
    ]
    assert [(s.path.name, s.reason.split(" (")[0]) for s in listing.skipped] == [
        ("notes.txt", "not an image file")
    ]


def test_a_third_class_folder_is_an_error_naming_it(tmp_path):
    split = tmp_path / "training_set"
    for folder in ("cats", "dogs", "birds"):
        _image(split / folder / "x.jpg")
    with pytest.raises(DatasetError, match="found: birds, cats, dogs"):
        list_split(split)


def test_hidden_system_and_stray_entries_are_listed_as_ignored_not_skipped(tmp_path):
    split = tmp_path / "training_set"
    _image(split / "cats" / "cat.1.jpg")
    _image(split / "dogs" / "dog.1.jpg")
    _image(split / ".ipynb_checkpoints" / "cat.1-checkpoint.jpg")  # not a third class
    _image(split / "dogs" / ".thumbs" / "dog.1.jpg")
    _image(split / "dogs" / ".thumbs" / "deeper" / "dog.2.jpg")
    _image(split / "cats" / "._cat.1.jpg")
    (split / "cats" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (split / "dogs" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    _image(split / "cat.2.jpg")  # outside the class folders
    listing = list_split(split)
    assert [f.path.name for f in listing.files] == ["cat.1.jpg", "dog.1.jpg"]
    assert listing.skipped == []
    assert {str(s.path.relative_to(split)): s.reason for s in listing.ignored} == {
        ".ipynb_checkpoints": "hidden folder (1 file)",
        "cat.2.jpg": "not in a class folder",
        "cats/._cat.1.jpg": "hidden file",
        "cats/.DS_Store": "hidden file",
        "dogs/.thumbs": "hidden folder (2 files)",
        "dogs/Thumbs.db": "system file",
    }
