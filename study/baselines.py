"""The report's four hand-run configurations and their published test accuracies.

A new study runs these first (enqueued trials), so that the study's own figures for exactly
the report's set-ups sit beside the search's. They are never pruned: they are the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

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


def enqueue_report_runs(study: optuna.Study, max_epochs: int) -> int:
    """Queue the four report runs that the study does not hold yet; returns how many."""
    # A failed baseline (interrupted, diverged) is queued again; any other state counts as held.
    alive = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    trials = study.get_trials(deepcopy=False, states=alive)
    existing = {t.user_attrs.get(BASELINE_ATTR) for t in trials}
    queued = 0
    for run in REPORT_RUNS:
        if run.label in existing:
            continue
        study.enqueue_trial(run.params(max_epochs), user_attrs={BASELINE_ATTR: run.label})
        queued += 1
    return queued
