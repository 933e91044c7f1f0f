"""`data check` names every file training will not use, and training agrees with it."""

import os
import shutil
import subprocess
import sys

import optuna
import pytest

import catdog.cache
from catdog.names import printable
from tests.bad_images import add_problem_files, make_unreadable

from ..helpers import fast_study_args


@pytest.fixture
def problem_dataset(tmp_path, tiny_dataset):
    """The tiny set (20 + 20 training, 8 + 8 test images) plus every kind of problem file,
    odd names and links (see add_problem_files), in a folder whose name is not UTF-8."""
    root = tmp_path / os.fsdecode(b"photos_\xe9t\xe9")
    shutil.copytree(tiny_dataset, root)
    return root, add_problem_files(root / "training_set")


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error:")]


def test_check_names_every_file_left_out_and_counts_the_usable_ones(run_cli, problem_dataset):
    root, expected = problem_dataset
    result = run_cli("data", "check", root)
    assert result.exit_code == 0, result.output
    assert "training_set: 24 cats, 26 dogs usable; 11 skipped, 5 ignored" in result.output
    assert "test_set: 8 cats, 8 dogs usable; 0 skipped, 0 ignored" in result.output
    listed = {
        line.strip().split(": ", 1)[0]: line.strip().split(": ", 1)[1]
        for line in result.output.splitlines()
        if line.startswith(f"  {printable(root)}")
    }
    split = root / "training_set"
    assert {path: reason.split(" (")[0] for path, reason in listed.items()} == {
        printable(split / name): reason.split(" (")[0]
        for name, reason in {**expected.skipped, **expected.ignored}.items()
    }
    for name, reason in expected.skipped.items():
        assert listed[printable(split / name)].startswith(reason)
    assert "skipped, not used for training (11):" in result.output
    assert "every image file is usable" not in result.output
    assert "Traceback" not in result.output


def test_strict_fails_when_anything_was_skipped(run_cli, problem_dataset, tiny_dataset):
    root, _ = problem_dataset
    strict = run_cli("data", "check", root, "--strict")
    assert strict.exit_code == 1
    assert _error_lines(strict.output) == [
        "Error: 11 files skipped (--strict): repair or remove them"
    ]
    clean = run_cli("data", "check", tiny_dataset, "--strict")
    assert clean.exit_code == 0, clean.output
    assert "every image file is usable" in clean.output


def test_training_uses_exactly_the_images_the_check_counted(run_cli, problem_dataset, monkeypatch):
    root, expected = problem_dataset
    checked = run_cli("data", "check", root)
    assert checked.exit_code == 0, checked.output
    # The check decoded the set into the cache training reads: training decodes nothing more.
    monkeypatch.setattr(catdog.cache, "decode_or_reason", _fail_if_called)
    args = ["--trials", 1, "--max-epochs", 1, "--no-seed-configs", "--storage", "sqlite:///s.db"]
    with pytest.warns(UserWarning) as warned:
        result = run_cli(*fast_study_args(root, *args))
    assert result.exit_code == 0, result.output
    assert "50 training, 16 test images" in result.output
    skipped_warnings = [str(w.message) for w in warned if str(w.message).startswith("skipped ")]
    assert sorted(message.split(": ")[0] for message in skipped_warnings) == sorted(
        f"skipped {printable(root / 'training_set' / name)}" for name in expected.skipped
    )
    (trial,) = optuna.load_study(study_name="catdog", storage="sqlite:///s.db").trials
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.user_attrs["data"] == f"SYNTHETIC shapes from {printable(root)}, 64 px"
    assert "photos_\\xe9t\\xe9" in trial.user_attrs["data"]


def test_a_class_without_usable_images_is_an_error_naming_it(run_cli, tiny_dataset, tmp_path):
    root = tmp_path / "photos"
    shutil.copytree(tiny_dataset, root)
    dogs = root / "test_set" / "dogs"
    for path in dogs.iterdir():
        path.write_bytes(b"")  # every test dog is now an empty file
    for args in (["data", "check", root], fast_study_args(root, "--trials", 1)):
        result = run_cli(*args)
        assert result.exit_code == 1
        assert _error_lines(result.output) == [f"Error: {dogs} holds no usable image"]
    first = sorted(dogs.iterdir())[0]
    assert f"{first}: empty file" in run_cli("data", "check", root).output


def test_a_class_folder_in_one_split_only_is_one_error_naming_it(run_cli, tiny_dataset, tmp_path):
    root = tmp_path / "photos"
    shutil.copytree(tiny_dataset, root)
    (root / "test_set" / "birds").mkdir()
    (root / "training_set" / "fish").mkdir()
    result = run_cli("data", "check", root)
    assert result.exit_code == 1
    assert _error_lines(result.output) == [
        f"Error: {root / 'test_set'} holds other class folders than training_set/: fish/ only "
        "in training_set/; birds/ only in test_set/; every split needs the same classes"
    ]


def _fail_if_called(*_args, **_kwargs):
    raise AssertionError("training should read the images the check cached")


@pytest.mark.parametrize("simulated", [False, True], ids=["chmod 000", "simulated"])
def test_an_unreadable_file_or_folder_is_named_and_the_rest_used(
    run_cli, tiny_dataset, tmp_path, monkeypatch, simulated
):
    root = tmp_path / "photos"
    shutil.copytree(tiny_dataset, root)
    cats, dogs = root / "training_set" / "cats", root / "training_set" / "dogs"
    locked_file = sorted(cats.iterdir())[0]
    locked_folder = dogs / "batch2"
    shutil.copytree(root / "test_set" / "dogs", locked_folder)
    make_unreadable(locked_file, monkeypatch, simulated=simulated)
    make_unreadable(locked_folder, monkeypatch, simulated=simulated)
    result = run_cli("data", "check", root)
    assert result.exit_code == 0, result.output
    assert "training_set: 19 cats, 20 dogs usable; 2 skipped, 0 ignored" in result.output
    assert f"  {locked_file}: cannot be read (Permission denied)" in result.output
    assert f"  {locked_folder}: folder cannot be read (Permission denied)" in result.output


@pytest.mark.parametrize("encoding", ["utf-8", "ascii"])
def test_odd_names_print_on_a_utf8_or_an_ascii_terminal(tiny_dataset, tmp_path, encoding):
    root = tmp_path / "photos"
    shutil.copytree(tiny_dataset, root)
    for name in (b"vide_\xe9.jpg", "vide_été.jpg".encode()):  # Latin-1, and UTF-8
        (root / "training_set" / "cats" / os.fsdecode(name)).touch()
    env = {**os.environ, "PYTHONIOENCODING": f"{encoding}:strict"}
    result = subprocess.run(
        [sys.executable, "-m", "study", "data", "check", root],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert b"Traceback" not in result.stderr
    lines = result.stdout.decode("utf-8").splitlines()  # click writes UTF-8 to an ASCII stream
    assert f"  {root}/training_set/cats/vide_\\xe9.jpg: empty file" in lines


@pytest.mark.parametrize("encoding", ["utf-8", "ascii"])
def test_a_class_folder_named_in_latin1_prints_on_a_utf8_or_an_ascii_terminal(
    tiny_shapes, tmp_path, encoding
):
    root = tmp_path / "photos"
    shutil.copytree(tiny_shapes, root)
    for split in ("training_set", "test_set"):  # what unzip of a Windows archive leaves
        (root / split / "stars").rename(root / split / os.fsdecode(b"\xe9toiles"))
    env = {**os.environ, "PYTHONIOENCODING": f"{encoding}:strict"}
    result = subprocess.run(
        [sys.executable, "-m", "study", "data", "check", root, "--image-size", "64"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    lines = result.stdout.decode("utf-8").splitlines()
    assert "  3 classes: ellipses, polygons, \\xe9toiles" in lines
    assert any(
        line.startswith("  training_set: 16 ellipses, 16 polygons, 16 \\xe9toiles usable")
        for line in lines
    ), lines
