"""Mistakes a user can make end in one clear line and a non-zero exit, never a traceback."""

import pytest

from ..helpers import fast_study_args


def _one_error_line(result) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trials", "0"], "0 is not in the range x>=1"),
        (["--pruner", "sometimes"], "'sometimes' is not one of"),
        (["--storage", "nosuchdb://x"], "cannot open storage"),
        (["--storage", "not a url"], "cannot parse storage URL"),
        (["--device", "cuda:3"], "device cuda:3 was asked for"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--image-size", "32"], "32 is not in the range x>=64"),
        (["--study-name", ""], "'--study-name': a study needs a name"),
        (["--study-name", "  "], "'--study-name': a study needs a name"),
    ],
)
def test_bad_optimize_options(run_cli, tiny_dataset, args, message):
    result = run_cli(*fast_study_args(tiny_dataset, "--trials", 1, *args))
    assert message in _one_error_line(result)


def test_data_folder_without_the_layout(run_cli, tmp_path):
    (tmp_path / "photos").mkdir()
    result = run_cli(*fast_study_args(tmp_path / "photos", "--trials", 1))
    assert "is not a data set: expected training_set/ and test_set/" in _one_error_line(result)


def test_missing_data_folder(run_cli, tmp_path):
    result = run_cli(*fast_study_args(tmp_path / "nowhere", "--trials", 1))
    assert "does not exist" in _one_error_line(result)


def test_synth_refuses_to_overwrite(run_cli, tmp_path):
    (tmp_path / "there").mkdir()
    result = run_cli("data", "synth", "--out", tmp_path / "there")
    assert "already exists" in _one_error_line(result)


def test_a_sqlite_url_with_a_host_part_leaves_no_file(run_cli, tiny_dataset, in_tmp):
    # SQLAlchemy reads sqlite://tmp/x.db as the file x.db here; it used to be made, and a lock.
    args = fast_study_args(tiny_dataset, "--trials", 1, "--storage", "sqlite://tmp/x.db")
    error = _one_error_line(run_cli(*args))
    assert "write sqlite:///tmp/x.db for a path relative to this folder" in error
    assert list(in_tmp.iterdir()) == []
