"""A disk that fills under a running study: the study database's, or the artifact folder's.

Each disk is a small tmpfs that a test fills in the middle of trial 1 (after its first epoch):
what a user meets when the cache, the checkpoints or another program take the last space.
"""

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from catdog.modelfile import load_model_file
from study.attrs import CHECKPOINT_ATTR, CHECKPOINT_SHA_ATTR
from study.run.progress import Progress
from study.store.resume import ResumeStore

from ..helpers import fast_study_args, fill, one_error_line
from ..workers import trials_of

STORAGE = "sqlite:///storage/catdog.db"
ARGS = ("--trials", 3, "--max-epochs", 3, "--no-seed-configs", "--pruner", "none")


@pytest.fixture
def three_trials(in_tmp):
    """A study whose next trials train 2, 3 and 3 epochs."""
    Path("storage").mkdir(exist_ok=True)
    study = optuna.create_study(storage=STORAGE, study_name="catdog")
    for epochs in (2, 3, 3):
        study.enqueue_trial({"optimizer": "adam", "lr": 1e-3, "shuffle": True, "epochs": epochs})


def _fill_after_first_epoch_of_trial_1(monkeypatch, folder: Path) -> None:
    shown = Progress.epoch_finished

    def epoch_finished(self, number, config, metrics):
        shown(self, number, config, metrics)
        if (number, metrics.epoch) == (1, 1):
            fill(folder)

    monkeypatch.setattr(Progress, "epoch_finished", epoch_finished)


def _model_loads(trial, artifact_dir) -> None:
    path = Path(artifact_dir) / trial.user_attrs[CHECKPOINT_ATTR]
    load_model_file(path, expected_sha256=trial.user_attrs[CHECKPOINT_SHA_ATTR])


def test_a_full_study_database_disk_stops_the_run_in_one_line_keeping_every_trial(
    run_cli, tiny_dataset, small_disk, monkeypatch
):
    disk = small_disk("24m", "storage")  # the default layout: database, cache, artifacts
    optuna.create_study(storage=STORAGE, study_name="catdog").enqueue_trial(
        {"optimizer": "adam", "lr": 1e-3, "shuffle": True, "epochs": 2}
    )
    _fill_after_first_epoch_of_trial_1(monkeypatch, disk)
    result = run_cli(*fast_study_args(tiny_dataset, *ARGS))

    line = one_error_line(result)
    assert line.startswith(
        f"Error: no room for the study database storage/catdog.db (the disk at {disk}): "
    )
    assert line.endswith(
        "needed; free space there, then run the same command again: every finished trial is kept"
    )
    first, full = trials_of(STORAGE)
    assert first.state == TrialState.COMPLETE
    _model_loads(first, "storage/artifacts")
    # Its checkpoint made room for the reason (else it would stay RUNNING, and the next run on
    # this machine would take it over at once: its worker process is gone by then).
    assert full.state == TrialState.FAIL
    assert full.user_attrs["fail_reason"].startswith("no room for the study database")

    (disk / "filler").unlink()
    again = run_cli(*fast_study_args(tiny_dataset, "--trials", 1, *ARGS[2:]))
    assert again.exit_code == 0, again.output
    states = [t.state for t in trials_of(STORAGE)]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]


def test_a_full_artifact_disk_fails_the_trial_and_stops_when_the_next_would_not_fit(
    run_cli, tiny_dataset, three_trials, small_disk, monkeypatch
):
    artifacts = small_disk("4m", "artifacts")
    _fill_after_first_epoch_of_trial_1(monkeypatch, artifacts)
    result = run_cli(*fast_study_args(tiny_dataset, *ARGS, "--artifact-dir", artifacts))

    line = one_error_line(result)
    assert line.startswith(
        f"Error: no room for the next trial (trial 1 failed for want of it) in {artifacts}/resume"
        f"/catdog (the disk at {artifacts}): "
    )
    first, full, queued = trials_of(STORAGE)
    assert first.state == TrialState.COMPLETE and queued.state == TrialState.WAITING
    _model_loads(first, artifacts)
    assert full.state == TrialState.FAIL
    assert full.user_attrs["fail_reason"].startswith(
        f"disk full: no room for trial 1's checkpoint after epoch 2 in {artifacts}/resume/catdog"
    )
    assert sorted(p.name for p in (artifacts / "resume" / "catdog").iterdir()) == []


def test_a_full_artifact_disk_fails_only_that_trial_when_the_next_fits(
    run_cli, tiny_dataset, three_trials, small_disk, monkeypatch
):
    artifacts = small_disk("4m", "artifacts")
    _fill_after_first_epoch_of_trial_1(monkeypatch, artifacts)
    discard = ResumeStore.discard

    def discard_and_free(self, trial):  # meanwhile another program frees its files
        discard(self, trial)
        (artifacts / "filler").unlink(missing_ok=True)

    monkeypatch.setattr(ResumeStore, "discard", discard_and_free)
    result = run_cli(*fast_study_args(tiny_dataset, *ARGS, "--artifact-dir", artifacts))

    assert result.exit_code == 0, result.output
    assert "trial 1 failed: disk full: no room for trial 1's checkpoint after epoch 2" in (
        result.output
    )
    first, full, after = trials_of(STORAGE)
    assert [first.state, full.state, after.state] == [
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.COMPLETE,
    ]
    for trial in (first, after):
        _model_loads(trial, artifacts)
