"""A failing `optimize` leaves no half-made study: every option is checked before anything is
written, in the order a user would fix them."""

import shutil
import sys

import optuna
import pytest

from ..helpers import fast_study_args

STORAGE = "sqlite:///study.db"


def _error(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "queued" not in result.output, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    return line


def _only_cats(tmp_path, tiny_dataset):
    root = tmp_path / "photos"
    shutil.copytree(tiny_dataset, root)
    for split in ("training_set", "test_set"):
        shutil.rmtree(root / split / "dogs")
    return root


def _birds_in_test_only(tmp_path, tiny_dataset):
    root = tmp_path / "photos"
    shutil.copytree(tiny_dataset, root)
    shutil.copytree(root / "test_set" / "dogs", root / "test_set" / "birds")
    return root


def _empty_test_dogs(tmp_path, tiny_dataset):
    root = tmp_path / "photos"
    shutil.copytree(tiny_dataset, root)
    for path in (root / "test_set" / "dogs").iterdir():
        path.write_bytes(b"")
    return root


@pytest.mark.parametrize(
    ("make_data", "message"),
    [
        (lambda tmp_path, tiny: tmp_path / "no-such-folder", "does not exist"),
        (_only_cats, "holds only cats/: a data set needs two or more classes"),
        (_birds_in_test_only, "birds/ only in test_set/; every split needs the same classes"),
        (_empty_test_dogs, "holds no usable image"),
    ],
)
def test_unusable_data_writes_nothing(run_cli, in_tmp, tiny_dataset, make_data, message):
    data = make_data(in_tmp, tiny_dataset)
    result = run_cli(*fast_study_args(data, "--trials", 1, "--study-name", "fresh"))
    assert message in _error(result)
    assert not (in_tmp / "storage" / "catdog.db").exists()
    assert not (in_tmp / "storage" / "artifacts").exists()


def test_missing_data_is_named_as_missing_also_beside_an_existing_study(
    run_cli, in_tmp, tiny_dataset
):
    args = ["--storage", STORAGE, "--trials", 1, "--max-epochs", 1, "--no-seed-configs"]
    assert run_cli(*fast_study_args(tiny_dataset, *args)).exit_code == 0
    result = run_cli(*fast_study_args(in_tmp / "moved-away", *args))
    line = _error(result)
    assert "does not exist" in line and "was run on" not in line
    assert len(optuna.load_study(study_name="catdog", storage=STORAGE).trials) == 1


def test_an_unusable_artifact_folder_writes_nothing(run_cli, in_tmp, tiny_dataset):
    (in_tmp / "a-file").write_text("not a folder")
    args = ["--trials", 1, "--study-name", "fresh", "--artifact-dir", in_tmp / "a-file" / "x"]
    assert "is not a folder" in _error(run_cli(*fast_study_args(tiny_dataset, *args)))
    assert not (in_tmp / "storage").exists()


def test_a_validation_part_without_a_class_writes_nothing(run_cli, in_tmp, tiny_dataset):
    args = ["--trials", 1, "--val-fraction", 0.01, "--storage", STORAGE]
    assert "leaves 0 for validation" in _error(run_cli(*fast_study_args(tiny_dataset, *args)))
    assert not (in_tmp / "study.db").exists()


def _nothing_decoded(result, in_tmp) -> None:
    assert "decoding" not in result.output
    assert not (in_tmp / "storage" / "cache").exists()


@pytest.mark.parametrize("port", [1])  # nothing listens there
def test_a_database_that_does_not_answer_is_refused_before_any_image_is_decoded(
    run_cli, in_tmp, tiny_dataset, port
):
    url = f"postgresql://catdog@127.0.0.1:{port}/catdog"
    result = run_cli(*fast_study_args(tiny_dataset, "--trials", 1, "--storage", url))
    line = _error(result)
    assert line.startswith(f"Error: cannot open storage {url}: ") and "refused" in line
    _nothing_decoded(result, in_tmp)


def test_a_missing_database_driver_is_refused_before_any_image_is_decoded(
    run_cli, in_tmp, tiny_dataset, monkeypatch
):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    url = "postgresql://catdog@127.0.0.1/catdog"
    result = run_cli(*fast_study_args(tiny_dataset, "--trials", 1, "--storage", url))
    assert _error(result) == (
        "Error: the database driver for postgresql+psycopg is not installed (psycopg); for "
        "PostgreSQL run: pip install 'catdog-study[postgres]'"
    )
    _nothing_decoded(result, in_tmp)


@pytest.mark.parametrize(
    ("changed", "named"),
    [
        (["--image-size", 72], "this run asks for --image-size 72 (the study's: 64): "),
        (["--max-epochs", 2], "this run asks for --max-epochs 2 (the study's: 1): "),
        (["--val-fraction", 0.25], "this run asks for judging on validation 0.25 of "),
    ],
)
def test_a_study_that_cannot_go_on_names_the_setting_before_decoding_anything(
    run_cli, in_tmp, tiny_dataset, changed, named
):
    args = ["--storage", STORAGE, "--trials", 1, "--max-epochs", 1, "--no-seed-configs"]
    assert run_cli(*fast_study_args(tiny_dataset, *args)).exit_code == 0
    cached = sorted(p.name for p in (in_tmp / "storage" / "cache").rglob("*"))
    result = run_cli(*fast_study_args(tiny_dataset, *args, *changed))
    assert named in _error(result)
    assert "decoding" not in result.output
    assert sorted(p.name for p in (in_tmp / "storage" / "cache").rglob("*")) == cached


def test_new_storage_and_artifact_folders_are_created_saying_so(run_cli, in_tmp, tiny_dataset):
    args = ["--trials", 1, "--max-epochs", 1, "--no-seed-configs"]
    where = ["--storage", "sqlite:///studies/a/catdog.db", "--artifact-dir", "models/a"]
    result = run_cli(*fast_study_args(tiny_dataset, *args, *where))
    assert result.exit_code == 0, result.output
    assert "created folder studies/a for the study database catdog.db" in result.output
    assert "created folder models/a for the trials' models and checkpoints" in result.output
    again = run_cli(*fast_study_args(tiny_dataset, *args, *where))
    assert again.exit_code == 0 and "created folder" not in again.output
