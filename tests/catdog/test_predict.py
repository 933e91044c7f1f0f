from pathlib import Path

import numpy as np
import pytest
import torch

import catdog.predict as predict_module
from catdog.images import decode_image
from catdog.model import CatDogCNN
from catdog.predict import ImagePathError, classify_files, image_paths
from catdog.train import predict_probabilities

from ..bad_images import jpeg_bytes, make_unreadable, noise_image


@pytest.fixture
def photos(tmp_path):
    """photos/ with images at two depths and what a real folder holds besides them."""
    root = tmp_path / "photos"
    for name in ("b.jpg", "a.JPG", "inner/c.png", "inner/deeper/d.jpeg"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        kind = "PNG" if name.endswith("png") else "JPEG"
        noise_image(seed=len(name)).save(root / name, format=kind)
    for name in ("notes.txt", ".hidden.jpg", "._a.jpg", ".thumbnails/e.jpg", "Thumbs.db"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(jpeg_bytes(noise_image()))
    return root


def test_a_folder_gives_its_images_and_those_below_sorted_and_nothing_hidden(photos):
    found = [p.relative_to(photos).as_posix() for p in image_paths([photos])]
    assert found == ["a.JPG", "b.jpg", "inner/c.png", "inner/deeper/d.jpeg"]


def test_patterns_are_expanded_as_a_shell_would(photos, monkeypatch):
    monkeypatch.chdir(photos.parent)
    assert image_paths(["photos/*.jpg"]) == [photos.relative_to(photos.parent) / "b.jpg"]
    deep = [p.as_posix() for p in image_paths(["photos/**/*.p*g"])]
    assert deep == ["photos/inner/c.png"]
    # A matched folder is taken as a folder; files keep the order of the arguments.
    found = image_paths(["photos/inner/*", "photos/b.jpg"])
    assert [p.name for p in found] == ["c.png", "d.jpeg", "b.jpg"]


def test_a_missing_file_is_kept_for_its_prediction_to_say_so(tmp_path):
    assert image_paths([tmp_path / "gone.jpg"]) == [tmp_path / "gone.jpg"]


def test_a_pattern_without_matches_or_a_folder_without_images_is_an_error(tmp_path):
    with pytest.raises(ImagePathError, match=r"nothing/\*\.jpg: no file matches this pattern"):
        image_paths([f"{tmp_path}/nothing/*.jpg"])
    (tmp_path / "empty" / ".hidden").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("no pictures")
    with pytest.raises(ImagePathError, match="no image files in this folder or below it"):
        image_paths([tmp_path / "empty"])


def test_predictions_come_in_order_and_do_not_depend_on_the_batch_size(photos, tmp_path):
    torch.manual_seed(0)
    model = CatDogCNN(64).eval()
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a picture")
    paths = image_paths([photos])
    paths[2:2] = [bad, tmp_path / "gone.jpg"]

    one_batch = list(classify_files(model, paths, batch_size=64))
    in_pairs = list(classify_files(model, paths, batch_size=2, threads=2))

    assert [p.path for p in one_batch] == paths == [p.path for p in in_pairs]
    assert [p.error for p in one_batch[2:4]] == ["not an image Pillow can read", "no such file"]
    for single, paired in zip(one_batch, in_pairs, strict=True):
        if single.error is None:
            assert single.probabilities == pytest.approx(paired.probabilities, abs=1e-6)
            pixels = torch.from_numpy(np.ascontiguousarray(decode_image(single.path, 64)))
            alone = predict_probabilities(model, pixels.permute(2, 0, 1)[None])[0]
            assert single.probabilities == pytest.approx(alone.tolist(), abs=1e-5)
            assert single.label == int(alone.argmax())


def test_at_most_two_batches_are_decoded_ahead_of_the_reader(photos, monkeypatch):
    decoded = []

    def counting(path, image_size):
        decoded.append(path)
        return np.zeros((image_size, image_size, 3), np.uint8)

    monkeypatch.setattr(predict_module, "decode_or_reason", counting)
    paths = image_paths([photos]) * 10  # 40 files, 20 batches of 2
    predictions = classify_files(CatDogCNN(64).eval(), paths, batch_size=2)
    next(predictions)
    assert len(decoded) <= 4
    assert len(list(predictions)) == 39 and len(decoded) == 40


@pytest.mark.parametrize("simulated", [False, True], ids=["chmod 000", "simulated"])
def test_an_unreadable_file_says_why(tmp_path, monkeypatch, simulated):
    locked = tmp_path / "locked.jpg"
    locked.write_bytes(jpeg_bytes(noise_image()))
    make_unreadable(locked, monkeypatch, simulated=simulated)
    (prediction,) = classify_files(CatDogCNN(64).eval(), [locked])
    assert prediction.label is None and prediction.error == "cannot be read (Permission denied)"


def test_a_folder_s_links_to_folders_are_followed_once_and_loops_named(photos, tmp_path):
    (tmp_path / "more").mkdir()
    noise_image(seed=9).save(tmp_path / "more" / "e.jpg")
    (photos / "inner" / "more").symlink_to(tmp_path / "more")
    (photos / "inner" / "up").symlink_to("..")
    (photos / "again").symlink_to("inner/deeper")
    (photos / "gone.jpg").symlink_to("missing.jpg")
    entries = image_paths([photos])
    found = [e.relative_to(photos).as_posix() for e in entries if isinstance(e, Path)]
    assert found == ["a.JPG", "b.jpg", "inner/c.png", "inner/deeper/d.jpeg", "inner/more/e.jpg"]
    problems = {
        e.path.relative_to(photos).as_posix(): e.reason for e in entries if not isinstance(e, Path)
    }
    assert problems == {
        "again": f"the same folder as {photos}/inner/deeper: its images are listed once, there",
        "gone.jpg": "a link to missing.jpg, which does not exist",
        "inner/up": "a link to .., a folder that holds it: not followed (it would loop)",
    }
    predictions = list(classify_files(CatDogCNN(64).eval(), entries, batch_size=2))
    assert [p.path for p in predictions if p.error] == [photos / name for name in problems]
    assert [p.path for p in predictions if p.label is not None] == [photos / f for f in found]


def test_a_recursive_pattern_lists_each_file_once_through_links_and_names_loops(
    photos, monkeypatch
):
    (photos / "inner" / "up").symlink_to("..")  # glob's '**' would go round it 40 times
    monkeypatch.chdir(photos.parent)
    entries = image_paths(["photos/**/*.jp*g"])
    assert [e.as_posix() for e in entries if isinstance(e, Path)] == [
        "photos/b.jpg",
        "photos/inner/deeper/d.jpeg",
    ]
    (loop,) = [e for e in entries if not isinstance(e, Path)]
    assert (loop.path.as_posix(), loop.reason) == (
        "photos/inner/up",
        "a link to .., a folder that holds it: not followed (it would loop)",
    )
    from_here = image_paths(["**/c.png"])  # the pattern starts in the current folder
    assert [e.as_posix() for e in from_here if isinstance(e, Path)] == ["photos/inner/c.png"]
