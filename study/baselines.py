"""The report's four hand-run configurations and their published test accuracies.

A new study runs these first (enqueued trials), so that the study's own figures for exactly
the report's set-ups sit beside the search's. They are never pruned: they are the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from catdog.config import TrainConfig
from study.space import SearchSpace

BASELINE_ATTR = "report_config"  # user attr naming the report configuration a trial reproduces


@dataclass(frozen=True)
class ReportRun:
    label: str
    optimizer: str
    lr: float
    shuffle: bool
    epochs: int
    published_test_accuracy: float  # percent, from the report (real cats vs dogs, 256 px)

    def params(self, max_epochs: int) -> dict:
        """Trial params for this run; epochs capped at the study's --max-epochs."""
        return {
            "optimizer": self.optimizer,
            "lr": self.lr,
            "shuffle": self.shuffle,
            "epochs": min(self.epochs, max_epochs),
        }


REPORT_RUNS = (
    ReportRun("SGD lr 0.1, shuffle on", "sgd", 0.1, True, 10, 74.15),
    ReportRun("Adam lr 0.01, shuffle on", "adam", 0.01, True, 10, 84.55),
    ReportRun("SGD lr 0.1, shuffle off", "sgd", 0.1, False, 10, 50.0),
    ReportRun("Adam lr 0.01, shuffle off", "adam", 0.01, False, 10, 50.0),
)


def is_baseline(trial: optuna.trial.BaseTrial | optuna.trial.FrozenTrial) -> bool:
    return BASELINE_ATTR in trial.user_attrs


def enqueue_report_runs(
    study: optuna.Study, max_epochs: int, space: SearchSpace | None = None
) -> int:
    """Queue the four report runs that the study does not hold yet; returns how many.

    With a space, each run gets the params that give the report's whole recipe in that space
    (batch 128, constant lr, ...), not just its four; SpaceError when the space lacks it.
    """
    # A failed baseline (interrupted, diverged) is queued again; any other state counts as held.
    alive = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    trials = study.get_trials(deepcopy=False, states=alive)
    existing = {t.user_attrs.get(BASELINE_ATTR) for t in trials}
    missing = [run for run in REPORT_RUNS if run.label not in existing]
    params = [run.params(max_epochs) for run in missing]
    if space is not None:  # all checked before any is queued
        params = [space.params_for(TrainConfig(**p)) for p in params]
    for run, run_params in zip(missing, params, strict=True):
        study.enqueue_trial(run_params, user_attrs={BASELINE_ATTR: run.label})
    return len(missing)
