from pathlib import Path

import pytest
from PIL import Image
from torchvision.datasets import ImageFolder

from catdog.dataset import DatasetError, find_dataset, find_dataset_root, list_split
from tests.bad_images import make_unreadable


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


def test_a_folder_holding_several_data_sets_names_them_instead_of_taking_one(tmp_path):
    for name in ("flowers", "leaves"):
        for split in ("train", "test"):
            for folder in ("a", "b"):
                _image(tmp_path / name / split / folder / "x.jpg")
    (tmp_path / "notes").mkdir()
    with pytest.raises(DatasetError) as raised:
        find_dataset_root(tmp_path)
    assert str(raised.value) == (
        f"{tmp_path} holds 2 data sets, flowers/, leaves/: give --data the one to use"
    )
    assert find_dataset_root(tmp_path / "leaves") == tmp_path / "leaves"


def test_a_file_given_as_the_data_folder_is_called_a_file(tmp_path):
    photo = _image(tmp_path / "photo.jpg")
    with pytest.raises(DatasetError, match="photo.jpg is a file, not a folder"):
        find_dataset_root(photo)


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


def test_classes_are_the_sorted_folders_numbered_as_imagefolder_numbers_them(tmp_path):
    split = tmp_path / "training_set"
    for folder in ("good", "Scratched", "dented", "bent"):  # capitals sort first, as there
        for name in ("b.jpg", "a.jpg"):
            _image(split / folder / name)
    listing = list_split(split)
    imagefolder = ImageFolder(str(split))
    assert listing.classes == tuple(imagefolder.classes) == ("Scratched", "bent", "dented", "good")
    assert [(str(f.path), f.label) for f in listing.files] == imagefolder.samples


def _split_folders(root, layout: dict[str, tuple[str, ...]]) -> None:
    for split, classes in layout.items():
        for folder in classes:
            _image(root / split / folder / "x.jpg")


def test_train_val_test_folders_are_a_data_set_with_its_own_validation_split(tmp_path):
    classes = ("defect", "good")
    _split_folders(tmp_path / "parts", {"train": classes, "val": classes, "test": classes})
    layout = find_dataset(tmp_path)
    assert layout.root == tmp_path / "parts"
    assert layout.splits == ("train", "val", "test")
    assert layout.classes == layout.labels == classes
    (tmp_path / "parts" / "val").rename(tmp_path / "parts" / "later")
    assert find_dataset(tmp_path).splits == ("train", "test")


def test_kaggles_folders_name_the_report_classes_cat_and_dog(tmp_path):
    _split_folders(tmp_path, {"training_set": ("cats", "dogs"), "test_set": ("cats", "dogs")})
    layout = find_dataset(tmp_path)
    assert (layout.train, layout.val, layout.test) == ("training_set", None, "test_set")
    assert layout.labels == ("cat", "dog")


def test_splits_with_other_classes_are_an_error_naming_the_difference(tmp_path):
    _split_folders(tmp_path, {"train": ("a", "b", "c"), "test": ("a", "b", "d", "e")})
    with pytest.raises(DatasetError) as raised:
        find_dataset(tmp_path)
    assert str(raised.value) == (
        f"{tmp_path / 'test'} holds other class folders than train/: c/ only in train/; d/, e/ "
        "only in test/; every split needs the same classes"
    )


@pytest.mark.parametrize("classes", [("cats",), ()])
def test_fewer_than_two_classes_is_an_error(tmp_path, classes):
    _split_folders(tmp_path, {"train": classes, "test": ("cats", "dogs")})
    (tmp_path / "train").mkdir(exist_ok=True)
    (tmp_path / "train" / ".ipynb_checkpoints").mkdir()  # hidden: not a class
    held = "only cats/" if classes else "no folder"
    with pytest.raises(DatasetError, match=f"train holds {held}: a data set needs two or more"):
        find_dataset(tmp_path)


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


def _two_classes(split: Path) -> None:
    for name in ("cat.1.jpg", "cat.2.jpg"):
        _image(split / "cats" / name)
    _image(split / "dogs" / "dog.1.jpg")


def test_links_to_folders_are_followed_and_listed_as_imagefolder_lists_them(tmp_path):
    split = tmp_path / "data" / "training_set"
    _two_classes(split)
    _image(split / "dogs" / "inner" / "dog.2.jpg")
    _image(split / "dogs" / "inner-b" / "dog.3.jpg")
    for name in ("a.jpg", "b.jpg"):
        _image(tmp_path / "extra_dogs" / name)
    (split / "dogs" / "batch2").symlink_to("../../../extra_dogs")
    listing = list_split(split)
    assert listing.skipped == []
    imagefolder = ImageFolder(str(split))
    assert [(str(f.path), f.label) for f in listing.files] == imagefolder.samples
    assert [f.path.relative_to(split).as_posix() for f in listing.files if f.label == 1] == [
        "dogs/dog.1.jpg",
        "dogs/batch2/a.jpg",
        "dogs/batch2/b.jpg",
        "dogs/inner/dog.2.jpg",
        "dogs/inner-b/dog.3.jpg",
    ]


def test_a_link_loop_is_named_and_not_followed(tmp_path):
    split = tmp_path / "training_set"
    _two_classes(split)
    _image(split / "dogs" / "sub" / "dog.2.jpg")
    (split / "dogs" / "sub" / "up").symlink_to("..")  # back to dogs/
    (split / "dogs" / "split").symlink_to("..")  # to training_set/, which holds dogs/
    (split / "cats" / "here").symlink_to(".")
    listing = list_split(split)
    assert [f.path.name for f in listing.files] == ["cat.1.jpg", "cat.2.jpg", "dog.1.jpg"] + [
        "dog.2.jpg"
    ]
    assert {str(s.path.relative_to(split)): s.reason for s in listing.skipped} == {
        "cats/here": "a link to ., a folder that holds it: not followed (it would loop)",
        "dogs/split": "a link to .., a folder that holds it: not followed (it would loop)",
        "dogs/sub/up": "a link to .., a folder that holds it: not followed (it would loop)",
    }


def test_a_link_to_the_other_class_folder_does_not_relabel_its_images(tmp_path):
    split = tmp_path / "training_set"
    _two_classes(split)
    (split / "cats" / "more").symlink_to("../dogs")
    (split / "dogs" / "again").symlink_to(split / "dogs" / ".." / "dogs")
    listing = list_split(split)
    assert [(f.path.name, f.label) for f in listing.files] == [
        ("cat.1.jpg", 0),
        ("cat.2.jpg", 0),
        ("dog.1.jpg", 1),
    ]
    reasons = {str(s.path.relative_to(split)): s.reason for s in listing.skipped}
    assert reasons["cats/more"] == (
        f"the same folder as {split / 'dogs'}: its images are listed once, there"
    )
    assert reasons["dogs/again"].endswith("a folder that holds it: not followed (it would loop)")


def test_a_dangling_link_is_skipped_with_where_it_leads(tmp_path):
    split = tmp_path / "training_set"
    _two_classes(split)
    (split / "dogs" / "dog.9.jpg").symlink_to("../../gone/dog.9.jpg")
    (split / "dogs" / "batch3").symlink_to("/nonexistent/batch3")
    listing = list_split(split)
    assert [f.path.name for f in listing.files] == ["cat.1.jpg", "cat.2.jpg", "dog.1.jpg"]
    assert {s.path.name: s.reason for s in listing.skipped} == {
        "batch3": "a link to /nonexistent/batch3, which does not exist",
        "dog.9.jpg": "a link to ../../gone/dog.9.jpg, which does not exist",
    }


@pytest.mark.parametrize("simulated", [False, True], ids=["chmod 000", "simulated"])
def test_a_folder_that_cannot_be_read_is_named_not_passed_over(tmp_path, monkeypatch, simulated):
    split = tmp_path / "training_set"
    _two_classes(split)
    locked = _image(split / "dogs" / "locked" / "dog.2.jpg").parent
    make_unreadable(locked, monkeypatch, simulated=simulated)
    listing = list_split(split)
    assert len(listing.files) == 3
    assert [(s.path, s.reason) for s in listing.skipped] == [
        (locked, "folder cannot be read (Permission denied)")
    ]
