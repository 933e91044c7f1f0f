"""`optimize --fuse K`: several trials trained at once are each the trial trained alone."""

import signal

import optuna
import pytest
from optuna.trial import TrialState

import study.run.objective as objective_module
from study.attrs import FAIL_REASON_ATTR, WORKER_ATTR

from ..helpers import fast_study_args
from ..workers import trials_of

STORAGE = "sqlite:///study.db"
ARGS = ["--storage", STORAGE, "--max-epochs", 3, "--pruner", "none"]


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
    reporter = objective_module.EpochReporter.__call__

    def prune_trial_1(self, metrics, state):
        reporter(self, metrics, state)
        if self.trial.number == 1 and metrics.epoch == 1:
            raise optuna.TrialPruned("pruned after epoch 1")

    monkeypatch.setattr(objective_module.EpochReporter, "__call__", prune_trial_1)
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
    reporter = objective_module.EpochReporter.__call__

    def stop_after_epoch_2(self, metrics, state):
        reporter(self, metrics, state)
        if metrics.epoch == 2:
            self.objective.stops.stop(signal.SIGTERM)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(objective_module.EpochReporter, "__call__", stop_after_epoch_2)
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
