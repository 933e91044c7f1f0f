"""`catdog-study predict`: files, folders and patterns; text, CSV and JSON; honest warnings."""

import csv
import io
import json
import os
import shutil

import numpy as np
import pytest
import torch

from catdog.images import decode_image
from catdog.modelfile import load_model_file
from catdog.train import predict_probabilities
from tests.bad_images import dds_texture, odd_exif_rotated_jpeg

from ..helpers import one_error_line
from .conftest import PHOTO_DATA


@pytest.fixture
def photos(in_tmp, tiny_dataset):
    """photos/ in the test's folder: 3 cats on top, 3 dogs in dogs/, and a hidden file."""
    folder = in_tmp / "photos"
    (folder / "dogs").mkdir(parents=True)
    for kind, target in (("cats", folder), ("dogs", folder / "dogs")):
        for source in sorted((tiny_dataset / "test_set" / kind).glob("*.jpg"))[:3]:
            shutil.copy(source, target / source.name)
    shutil.copy(source, folder / ".hidden.jpg")
    (folder / "notes.txt").write_text("not a picture")
    return folder


def _expected(model_path, image) -> list[float]:
    model = load_model_file(model_path).model
    pixels = torch.from_numpy(np.ascontiguousarray(decode_image(image, 64))).permute(2, 0, 1)
    return predict_probabilities(model, pixels[None])[0].tolist()


def test_a_model_of_synthetic_shapes_says_so_in_one_warning_line(run_cli, make_model, photos):
    result = run_cli("predict", make_model().name, "photos/cat.0.jpg")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "warning: model.safetensors learned SYNTHETIC shapes from storage/data/synthetic, "
        "64 px, not cats and dogs: its answers on photos mean nothing"
    ]
    (line,) = result.stdout.splitlines()
    label, probability = line.removeprefix("photos/cat.0.jpg: ").split()
    expected = _expected("model.safetensors", photos / "cat.0.jpg")
    assert label == ("cat", "dog")[int(np.argmax(expected))]
    assert float(probability) == pytest.approx(max(expected), abs=1e-4)


def test_a_model_of_photos_gives_no_warning(run_cli, make_model, photos):
    result = run_cli("predict", make_model(data=PHOTO_DATA).name, "photos/cat.0.jpg")
    assert result.exit_code == 0 and result.stderr == ""


def test_verbose_describes_the_model_first_on_stderr(run_cli, make_model, photos):
    result = run_cli("predict", "--verbose", make_model().name, "photos/cat.0.jpg")
    assert result.exit_code == 0, result.output
    assert "image size  64 px" in result.stderr and "accuracy 97.5 %" in result.stderr
    assert result.stdout.startswith("photos/cat.0.jpg: ")


def test_a_folder_gives_every_image_in_it_and_below_it(run_cli, make_model, photos):
    result = run_cli("predict", make_model(data=PHOTO_DATA).name, "photos")
    assert result.exit_code == 0, result.output
    named = [line.split(": ")[0] for line in result.stdout.splitlines()]
    assert named == [f"photos/cat.{i}.jpg" for i in range(3)] + [
        f"photos/dogs/{p.name}" for p in sorted((photos / "dogs").iterdir())
    ]


def test_a_quoted_pattern_is_expanded(run_cli, make_model, photos):
    result = run_cli("predict", make_model(data=PHOTO_DATA).name, "photos/**/dog.*.jpg")
    assert result.exit_code == 0, result.output
    assert [line.split(": ")[0] for line in result.stdout.splitlines()] == [
        f"photos/dogs/{p.name}" for p in sorted((photos / "dogs").iterdir())
    ]


def test_csv_has_a_row_per_file_with_both_probabilities_or_the_error(run_cli, make_model, photos):
    model = make_model().name
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    result = run_cli("predict", "--format", "csv", "--batch-size", "2", model, "photos/*.jpg")
    assert result.exit_code == 1  # one file could not be classified
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["path"] for row in rows] == ["photos/broken.jpg"] + [
        f"photos/cat.{i}.jpg" for i in range(3)
    ]
    assert rows[0]["label"] == rows[0]["p_cat"] == "" and rows[0]["error"]
    for row in rows[1:]:
        expected = _expected(model, row["path"])
        assert [float(row["p_cat"]), float(row["p_dog"])] == pytest.approx(expected, abs=1e-5)
        assert row["label"] == ("cat", "dog")[int(np.argmax(expected))] and row["error"] == ""
    assert "warning: 1 of 4 files could not be classified" in result.stderr


def test_json_carries_the_model_and_a_prediction_per_file(run_cli, make_model, photos):
    model = make_model().name
    result = run_cli("predict", "--format", "json", model, "photos", "photos/missing.jpg")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["model"]["synthetic"] is True
    assert document["model"]["test_accuracy"] == 0.975
    predictions = document["predictions"]
    assert len(predictions) == 7
    assert predictions[-1] == {
        "path": "photos/missing.jpg",
        "label": None,
        "p_cat": None,
        "p_dog": None,
        "error": "no such file",
    }
    for row in predictions[:-1]:
        assert row["error"] is None and row["p_cat"] + row["p_dog"] == pytest.approx(1)


def test_a_bad_file_among_good_ones_is_reported_and_the_rest_classified(
    run_cli, make_model, photos
):
    (photos / "empty.jpg").touch()
    result = run_cli("predict", make_model(data=PHOTO_DATA).name, "photos/*.jpg")
    assert result.exit_code == 1
    assert result.stderr == "photos/empty.jpg: cannot classify: empty file\n"
    assert len(result.stdout.splitlines()) == 3


def test_a_pattern_or_folder_that_names_no_image_isone_error_line(run_cli, make_model, in_tmp):
    model = make_model().name
    (in_tmp / "empty").mkdir()
    error = one_error_line(run_cli("predict", model, "nothing/*.jpg"))
    assert error == "Error: nothing/*.jpg: no file matches this pattern"
    assert "Error: empty: no image files in this folder" in one_error_line(
        run_cli("predict", model, "empty")
    )


def test_a_file_no_decoder_can_read_is_named_and_the_others_classified(
    run_cli, make_model, photos
):
    (photos / "texture.jpg").write_bytes(dds_texture())  # a game texture, renamed
    (photos / "odd_exif.jpg").write_bytes(odd_exif_rotated_jpeg())  # usable, turned upright
    (photos / "gone.jpg").symlink_to("missing.jpg")
    result = run_cli("predict", make_model(data=PHOTO_DATA).name, "photos")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "photos/gone.jpg: cannot classify: a link to missing.jpg, which does not exist",
        "photos/texture.jpg: cannot classify: cannot be decoded "
        "(Unimplemented pixel format 1145258561)",
    ]
    classified = [line.split(": ")[0] for line in result.stdout.splitlines()]
    assert classified == [f"photos/cat.{i}.jpg" for i in range(3)] + ["photos/odd_exif.jpg"] + [
        f"photos/dogs/{p.name}" for p in sorted((photos / "dogs").iterdir())
    ]


def test_a_linked_folder_is_classified_and_a_loop_named(run_cli, make_model, photos, in_tmp):
    shutil.copytree(photos / "dogs", in_tmp / "more_dogs")
    (photos / "dogs" / "batch2").symlink_to("../../more_dogs")
    (photos / "dogs" / "up").symlink_to("..")
    result = run_cli("predict", make_model(data=PHOTO_DATA).name, "photos/dogs")
    assert result.exit_code == 1
    assert result.stderr == (
        "photos/dogs/up: cannot classify: a link to .., a folder that holds it: not followed "
        "(it would loop)\n"
    )
    dogs = sorted(p.name for p in (in_tmp / "more_dogs").iterdir())
    assert [line.split(": ")[0] for line in result.stdout.splitlines()] == [
        f"photos/dogs/{name}" for name in dogs
    ] + [f"photos/dogs/batch2/{name}" for name in dogs]


LATIN_1 = os.fsdecode(b"chat_\xe9t\xe9.jpg")  # the bytes `unzip` leaves from a Windows archive


@pytest.mark.parametrize("output_format", ["text", "csv", "json"])
def test_a_name_that_is_not_utf8_is_written_escaped(run_cli, make_model, photos, output_format):
    shutil.copy(photos / "cat.0.jpg", photos / LATIN_1)
    (photos / os.fsdecode(b"vide_\xe9.jpg")).touch()
    model = make_model(data=PHOTO_DATA).name
    result = run_cli("predict", "--format", output_format, model, "photos/*.jpg")
    assert result.exit_code == 1, result.output  # the empty file
    assert "Traceback" not in result.output
    if output_format == "text":
        assert "photos/chat_\\xe9t\\xe9.jpg: cat " in result.stdout
        assert result.stderr == "photos/vide_\\xe9.jpg: cannot classify: empty file\n"
        return
    if output_format == "csv":
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
    else:
        rows = json.loads(result.stdout)["predictions"]
    assert [row["path"] for row in rows] == [f"photos/cat.{i}.jpg" for i in range(3)] + [
        "photos/chat_\\xe9t\\xe9.jpg",
        "photos/vide_\\xe9.jpg",
    ]
    assert rows[3]["label"] == rows[0]["label"] and rows[4]["error"] == "empty file"
