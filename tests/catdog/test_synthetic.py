import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import catdog.synthetic as synthetic
from catdog.dataset import list_split
from catdog.synthetic import SyntheticSpec, draw_image, read_manifest, write_synthetic_dataset

SMALL = SyntheticSpec(seed=3, train_per_class=6, test_per_class=3, label_noise=0.0)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.jpg"))}


def test_the_set_has_kaggles_layout_counts_and_manifest(tmp_path):
    root = write_synthetic_dataset(tmp_path / "set", SMALL)
    train, test = list_split(root / "training_set"), list_split(root / "test_set")
    assert [f.label for f in train.files] == [0] * 6 + [1] * 6
    assert [f.label for f in test.files] == [0] * 3 + [1] * 3
    assert {f.path.name.split(".")[0] for f in train.files} == {"cat", "dog"}
    assert read_manifest(root) == SMALL
    assert read_manifest(tmp_path) is None


def test_same_seed_same_files_and_another_seed_other_files(tmp_path):
    first = _files(write_synthetic_dataset(tmp_path / "a", SMALL))
    again = _files(write_synthetic_dataset(tmp_path / "b", SMALL))
    other = _files(write_synthetic_dataset(tmp_path / "c", SyntheticSpec(seed=4, **_counts())))
    assert first == again
    assert first.keys() == other.keys() and first != other


def _counts() -> dict:
    return {"train_per_class": 6, "test_per_class": 3, "label_noise": 0.0}


def test_several_threads_write_exactly_what_one_thread_writes(tmp_path):
    parallel = write_synthetic_dataset(tmp_path / "parallel", SMALL, threads=4)
    serial = write_synthetic_dataset(tmp_path / "serial", SMALL, threads=1)
    assert _files(parallel) == _files(serial)
    assert len(_files(parallel)) == 18


def test_label_noise_files_some_images_under_the_other_class(tmp_path):
    spec = SyntheticSpec(seed=0, train_per_class=100, test_per_class=2, label_noise=0.2)
    root = write_synthetic_dataset(tmp_path / "noisy", spec, threads=1)
    cats = {p.name for p in (root / "training_set" / "cats").iterdir()}
    # Images 0..99 are drawn as ellipses ("cats"), 100..199 as polygons; a misfiled one keeps
    # its number and takes its folder's name.
    misfiled = [n for n in cats if int(n.split(".")[1]) >= 100]
    assert 5 <= len(misfiled) <= 40
    assert all(n.startswith("cat.") for n in cats)


@pytest.mark.parametrize(
    ("photo_sized", "long_sides"), [(False, range(56, 300)), (True, range(300, 501))]
)
def test_image_sizes(tmp_path, photo_sized, long_sides):
    spec = SyntheticSpec(seed=0, train_per_class=15, test_per_class=2, photo_sized=photo_sized)
    root = write_synthetic_dataset(tmp_path / "set", spec, threads=1)
    for path in (root / "training_set").rglob("*.jpg"):
        with Image.open(path) as image:
            width, height = image.size
        assert max(width, height) in long_sides
        assert 0.65 <= width / height <= 1.55
    assert read_manifest(root).photo_sized is photo_sized


def test_an_existing_folder_is_refused(tmp_path):
    (tmp_path / "there").mkdir()
    with pytest.raises(FileExistsError):
        write_synthetic_dataset(tmp_path / "there", SMALL)


@pytest.mark.parametrize("threads", [1, 3])
def test_a_failed_write_leaves_nothing_behind_and_stops_early(tmp_path, monkeypatch, threads):
    drawn = []

    def draw_then_fail(rng, label, *, photo_sized=False):
        drawn.append(label)
        if len(drawn) == 5:
            raise OSError("No space left on device")
        return Image.new("RGB", (90, 90))

    monkeypatch.setattr(synthetic, "draw_image", draw_then_fail)
    spec = SyntheticSpec(train_per_class=500, test_per_class=100)
    with pytest.raises(OSError, match="No space left"):
        write_synthetic_dataset(tmp_path / "set", spec, threads=threads)
    assert list(tmp_path.iterdir()) == []
    assert len(drawn) < 100  # the other 1 100 images were not drawn after the failure


def test_two_classes_are_written_byte_for_byte_as_before_the_third_shape(tmp_path):
    # Caches and published figures of the two-class set stay valid: the files, their names and
    # the manifest are those the generator wrote before it could draw stars (digest taken then).
    spec = SyntheticSpec(seed=3, train_per_class=6, test_per_class=3, label_noise=0.5)
    root = write_synthetic_dataset(tmp_path / "set", spec, threads=1)
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    assert digest.hexdigest() == (
        "d8f15cecb6ed1211f272e743b618fd843d5c2df9a86d8d3c75d17042a188f9e6"
    )


def test_three_classes_draw_a_star_as_the_third_shape_in_folders_named_after_the_shapes(
    tmp_path,
):
    spec = SyntheticSpec(seed=0, train_per_class=60, test_per_class=2, classes=3, label_noise=0.2)
    root = write_synthetic_dataset(tmp_path / "shapes", spec, threads=1)
    train = list_split(root / "training_set")
    assert train.classes == ("ellipses", "polygons", "stars")
    assert read_manifest(root) == spec
    # Images 0..59 are ellipses, 60..119 polygons, 120..179 stars; noise files an image under
    # one of the two other classes, both of them taken.
    filed = {(int(f.path.name.split(".")[1]) // 60, f.label) for f in train.files}
    assert {(drawn, label) for drawn, label in filed if drawn != label} >= {(2, 0), (2, 1)}
    assert all(f.path.name.startswith(train.classes[f.label][:-1]) for f in train.files)
    star = draw_image(np.random.default_rng(0), 2)
    assert star.size[1] in range(80, 200)


def test_a_data_set_has_two_or_three_synthetic_classes():
    with pytest.raises(ValueError, match="classes must be 2 or 3"):
        SyntheticSpec(classes=4)
