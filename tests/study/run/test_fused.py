"""`optimize --fuse K`: several trials trained at once are each the trial trained alone."""

import errno
import json
import signal
import threading
import time
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState
from optuna_dashboard import get_note
from optuna_dashboard._note import get_note_from_system_attrs

import study.run.background as background_module
import study.run.objective as objective_module
import study.run.reporter as reporter_module
from catdog.fused import FusedTrainer
from study.attrs import FAIL_REASON_ATTR, RESUME_ATTR, WORKER_ATTR
from study.results import dashboard as dashboard_module
from study.results.summary import study_summary
from study.run.signals import Stopped
from study.store.resume import ResumeStore

from ..helpers import fast_study_args
from ..workers import trials_of

STORAGE = "sqlite:///study.db"
ARGS = ["--storage", STORAGE, "--max-epochs", 3, "--pruner", "none"]


@pytest.fixture(autouse=True, params=["at once", "beside the training"])
def bookkeeping(request, monkeypatch):
    """Each test twice: the fused run's bookkeeping done at once (as on a CPU) and on the
    background thread beside the training loop (as on a GPU)."""
    if request.param == "beside the training":
        monkeypatch.setattr(background_module, "THREAD_DEVICES", ("cuda", "cpu"))
    return request.param


def _losses(name: str) -> dict[int, list[float]]:
    study = optuna.load_study(study_name=name, storage=STORAGE)
    return {t.number: t.user_attrs["epoch_test_loss"] for t in study.trials}


def test_fused_trials_learn_exactly_what_they_learn_alone(run_cli, tiny_dataset):
    # The report's four runs (different optimizers, learning rates, shuffle), fused and not.
    alone = run_cli(*fast_study_args(tiny_dataset, *ARGS, "--trials", 4, "--study-name", "alone"))
    assert alone.exit_code == 0, alone.output
    fused = run_cli(
        *fast_study_args(tiny_dataset, *ARGS, "--trials", 4, "--study-name", "fused", "--fuse", 4)
    )
    assert fused.exit_code == 0, fused.output
    assert "training up to 4 trials at once" in fused.output
    expected, got = _losses("alone"), _losses("fused")
    assert sorted(got) == sorted(expected) == [0, 1, 2, 3]
    for number, losses in expected.items():
        assert got[number] == pytest.approx(losses, rel=1e-5)
    slots = [t.user_attrs[WORKER_ATTR]["slot"] for t in trials_of(STORAGE, "fused")]
    assert sorted(slots) == [0, 1, 2, 3]


def test_a_pruned_trial_frees_its_slot_for_the_next(run_cli, tiny_dataset, monkeypatch):
    reporter = reporter_module.EpochReporter.__call__

    def prune_trial_1(self, metrics, state):
        reporter(self, metrics, state)
        if self.trial.number == 1 and metrics.epoch == 1:
            raise optuna.TrialPruned("pruned after epoch 1")

    monkeypatch.setattr(reporter_module.EpochReporter, "__call__", prune_trial_1)
    result = run_cli(*fast_study_args(tiny_dataset, *ARGS, "--trials", 3, "--fuse", 2))
    assert result.exit_code == 0, result.output
    trials = trials_of(STORAGE)
    assert [t.state for t in trials] == [
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.COMPLETE,
        TrialState.WAITING,  # the report's fourth run, not asked for
    ]
    assert trials[2].user_attrs[WORKER_ATTR]["slot"] == trials[1].user_attrs[WORKER_ATTR]["slot"]


def test_a_stop_queues_every_fused_trial_again_and_each_resumes_alone(run_cli, tiny_dataset):
    reporter = reporter_module.EpochReporter.__call__

    def stop_after_epoch_2(self, metrics, state):
        reporter(self, metrics, state)
        if metrics.epoch == 2:
            self.objective.stops.stop(signal.SIGTERM)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reporter_module.EpochReporter, "__call__", stop_after_epoch_2)
        stopped = run_cli(*fast_study_args(tiny_dataset, *ARGS, "--trials", 3, "--fuse", 3))
    assert stopped.exit_code == 143, stopped.output
    assert "the running trials are marked FAIL and queued again to resume (0, 1, 2)" in (
        stopped.output
    )
    failed = trials_of(STORAGE)[:3]
    for trial in failed:
        assert trial.state == TrialState.FAIL
        assert trial.user_attrs[FAIL_REASON_ATTR].startswith("stopped by SIGTERM after epoch")
    # The report's fourth run was queued before the three copies: four trials run them all.
    again = run_cli(*fast_study_args(tiny_dataset, *ARGS, "--trials", 4))
    assert again.exit_code == 0, again.output
    resumed = [t for t in trials_of(STORAGE) if "resumed_from" in t.user_attrs]
    assert sorted(t.user_attrs["resumed_from"]["trial"] for t in resumed) == [0, 1, 2]
    assert all(t.state == TrialState.COMPLETE for t in resumed)


def test_every_fused_trial_leaves_what_a_trial_alone_leaves(run_cli, tiny_dataset, in_tmp):
    result = run_cli(*fast_study_args(tiny_dataset, *ARGS, "--trials", 4, "--fuse", 3))
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="catdog", storage=STORAGE)
    notes = study._storage.get_study_system_attrs(study._study_id)
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE
        assert trial.user_attrs["epoch_test_loss"] == [
            trial.intermediate_values[epoch] for epoch in sorted(trial.intermediate_values)
        ]
        assert len(trial.user_attrs["epoch_test_loss"]) == trial.params["epochs"]
        names = {
            json.loads(value)["filename"]
            for key, value in trial.system_attrs.items()
            if key.startswith("artifacts:")
        }
        assert names == {
            f"trial-{trial.number}-model.safetensors",
            f"trial-{trial.number}-learning-curves.png",
        }
        assert get_note_from_system_attrs(notes, trial._trial_id)["body"].startswith(
            f"**trial {trial.number}: "
        )
    assert get_note(study) == study_summary(study)  # rewritten after the last trial
    assert not list((in_tmp / "storage" / "artifacts" / "resume").rglob("*.pt"))


def test_a_stop_waits_for_the_trials_that_ended_before_it(run_cli, tiny_dataset, monkeypatch):
    # The pruner stops trial 1 after epoch 1, and its curves take a while to draw; the stop
    # comes at trial 0's second epoch, before they are stored. Trial 1 still ends PRUNED with
    # its curves; the running trials are queued again, each with its last epoch's checkpoint.
    reporter = reporter_module.EpochReporter.__call__
    publish = dashboard_module.TrialCurvesPublisher.__call__

    def stop_at_trial_0_epoch_2(self, metrics, state):
        reporter(self, metrics, state)
        if self.trial.number == 0 and metrics.epoch == 2:
            self.objective.stops.stop(signal.SIGTERM)

    def slow_publish(self, trial, outcome):
        time.sleep(1.0)
        publish(self, trial, outcome)

    monkeypatch.setattr(reporter_module.EpochReporter, "__call__", stop_at_trial_0_epoch_2)
    monkeypatch.setattr(optuna.Trial, "should_prune", lambda trial: trial.number == 1)
    monkeypatch.setattr(dashboard_module.TrialCurvesPublisher, "__call__", slow_publish)
    args = [*ARGS, "--trials", 3, "--fuse", 2, "--no-seed-configs", "--max-epochs", 5]
    stopped = run_cli(*fast_study_args(tiny_dataset, *args))
    assert stopped.exit_code == 143, stopped.output
    assert "queued again to resume (0, 2)" in stopped.output
    trials = {t.number: t for t in trials_of(STORAGE)}
    assert trials[1].state == TrialState.PRUNED
    assert "trial-1-learning-curves.png" in str(trials[1].system_attrs)
    assert [trials[n].state for n in (0, 2)] == [TrialState.FAIL, TrialState.FAIL]
    # Trial 0's second epoch was handed over just before the stop: stored all the same.
    assert trials[0].user_attrs[FAIL_REASON_ATTR] == (
        "stopped by SIGTERM after epoch 2; queued again to resume"
    )
    assert len(trials[0].user_attrs["epoch_test_loss"]) == 2
    assert trials[0].user_attrs[RESUME_ATTR]["epoch"] == 2
    assert trials[2].user_attrs[FAIL_REASON_ATTR].startswith("stopped by SIGTERM after epoch")
    study = optuna.load_study(study_name="catdog", storage=STORAGE)
    assert get_note(study) == study_summary(study)  # the stopped trials shown as they ended


def test_a_full_disk_fails_only_the_fused_trial_that_met_it(run_cli, tiny_dataset, monkeypatch):
    study = optuna.create_study(storage=STORAGE, study_name="catdog")
    for _ in range(3):
        study.enqueue_trial({"optimizer": "adam", "lr": 1e-3, "shuffle": True, "epochs": 3})
    real_save, saves = torch.save, []

    def save(obj, file, *args, **kwargs):
        saves.append(file)
        if len(saves) == 3:  # trial 2's first checkpoint: the disk is full right now
            file.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, file, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    args = [*ARGS, "--trials", 3, "--fuse", 3, "--no-seed-configs"]
    result = run_cli(*fast_study_args(tiny_dataset, *args))
    assert result.exit_code == 0, result.output
    first, second, full = trials_of(STORAGE)
    assert full.state == TrialState.FAIL
    assert full.user_attrs[FAIL_REASON_ATTR].startswith(
        "disk full while writing a checkpoint (no room for trial 2's checkpoint after epoch 1"
    )
    assert first.state == second.state == TrialState.COMPLETE
    assert list(Path("storage").rglob("*.tmp")) == []  # the half-written file was removed


@pytest.fixture
def threads_before() -> set:
    return set(threading.enumerate())


def _no_trial_left_running(threads_before: set):
    trials = trials_of(STORAGE)
    assert trials and all(t.state != TrialState.RUNNING for t in trials), [
        (t.number, t.state) for t in trials
    ]
    # No thread left behind: a trial's heartbeat thread left open keeps the process alive.
    left = [t for t in threading.enumerate() if t not in threads_before and not t.daemon]
    assert not left


def test_a_stop_while_a_finished_trial_is_scored_keeps_it_and_leaves_none_running(
    run_cli, tiny_dataset, monkeypatch, threads_before
):
    final_figures = objective_module.Objective.final_figures

    def stopped_while_scoring(self, state):
        if not getattr(self, "stopped_once", False):
            self.stopped_once = True
            self.stops.stop(signal.SIGTERM)
        return final_figures(self, state)

    monkeypatch.setattr(objective_module.Objective, "final_figures", stopped_while_scoring)
    args = [*ARGS, "--trials", 4, "--fuse", 3, "--val-fraction", 0.2]
    result = run_cli(*fast_study_args(tiny_dataset, *args))
    assert result.exit_code == 143, result.output
    _no_trial_left_running(threads_before)
    states = [t.state for t in trials_of(STORAGE)[:4]]
    assert states.count(TrialState.FAIL) >= 1  # stopped and queued again, not lost


def test_an_error_as_a_trial_ends_fails_that_trial_and_leaves_none_running(
    run_cli, tiny_dataset, monkeypatch, threads_before
):
    save_model_file = objective_module.save_model_file

    def read_only_for_trial_1(path, model, *, trial, **info):
        if trial == 1:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return save_model_file(path, model, trial=trial, **info)

    monkeypatch.setattr(objective_module, "save_model_file", read_only_for_trial_1)
    result = run_cli(*fast_study_args(tiny_dataset, *ARGS, "--trials", 4, "--fuse", 3))
    assert result.exit_code == 1, result.output
    _no_trial_left_running(threads_before)
    trial_1 = trials_of(STORAGE)[1]
    assert trial_1.user_attrs[FAIL_REASON_ATTR].startswith("error: PermissionError")


def test_a_failed_checkpoint_is_blamed_on_its_own_trial_only(
    run_cli, tiny_dataset, monkeypatch, threads_before
):
    write = ResumeStore.write

    def read_only_for_trial_0(self, trial, payload):
        if trial.number == 0 and payload["epoch"] == 2:
            path = self.folder / "trial-0-epoch-2.pt"
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return write(self, trial, payload)

    monkeypatch.setattr(ResumeStore, "write", read_only_for_trial_0)
    args = [*ARGS, "--trials", 3, "--fuse", 3, "--max-epochs", 4]
    result = run_cli(*fast_study_args(tiny_dataset, *args))
    assert result.exit_code == 1, result.output
    _no_trial_left_running(threads_before)
    trials = trials_of(STORAGE)
    assert "PermissionError" in trials[0].user_attrs[FAIL_REASON_ATTR]
    for trial in trials[1:3]:  # stopped by the run's error, but not given trial 0's
        assert "trial-0" not in trial.user_attrs.get(FAIL_REASON_ATTR, "")
        # Their curves are whole: the failed job skipped trial 0's later writes only.
        assert len(trial.user_attrs["epoch_test_loss"]) == len(trial.intermediate_values)


def test_a_stop_while_a_trial_joins_queues_it_again(
    run_cli, tiny_dataset, monkeypatch, threads_before
):
    start = FusedTrainer.start

    def stopped_while_joining(self, slot, config, seed, **kwargs):
        if slot == 1:
            start(self, slot, config, seed, **kwargs)
            raise Stopped(signal.SIGTERM)
        return start(self, slot, config, seed, **kwargs)

    monkeypatch.setattr(FusedTrainer, "start", stopped_while_joining)
    result = run_cli(*fast_study_args(tiny_dataset, *ARGS, "--trials", 3, "--fuse", 3))
    assert result.exit_code == 143, result.output
    assert "queued again to resume (0, 1)" in result.output
    _no_trial_left_running(threads_before)
    trials = trials_of(STORAGE)
    assert trials[1].user_attrs[FAIL_REASON_ATTR] == (
        "stopped by SIGTERM after epoch 0; queued again to resume"
    )
