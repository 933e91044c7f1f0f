"""Which finished trial a study calls best, the best by its other figure, and how far the best
trial's test accuracy can be trusted.

Optuna's `study.best_trial` takes the first of equal values, and with --objective accuracy equal
values are common: 1 000 test photos give accuracies in steps of 0.1 point. Here equal values are
ordered by the loss on the same set (the lower first: as accurate, and less over-confident where
it is wrong; the figure the pruner compares), then by number. The trial's value, what Optuna and
the dashboard show, stays the plain error: adding a tie-break to it would move every point of
the dashboard's plots. `report`, `export`, the end-of-run summary and the study note all ask here.
"""

from __future__ import annotations

import math

import optuna
from optuna.trial import FrozenTrial, TrialState

from study.attrs import STUDY_OBJECTIVE_ATTR, accuracy_attr, eval_split, loss_attr

# How many points the best trial's test accuracy overstates what it scores on photos that did not
# pick it, when the test set picked it (today's way): the "selection bias" measured by replaying
# 200 studies of 40 trials of the default search on curves recorded with a validation part, per
# objective (+0.4 ± 0.1 and +0.6 ± 0.1, standard errors). Source: benchmarks/search/README.md,
# "Selection bias (2026-12-03)": dogs-cats-dev subset, 1 600 training, 400 validation and 1 000
# test photos at 128 px, 2-core CPU, bf16, 66 recorded runs, replayed 2026-12-04.
TEST_SELECTION_BIAS_POINTS = {"accuracy": 0.4, "loss": 0.6}


def ranked_by(study: optuna.Study) -> str:
    """'accuracy' or 'loss': what the study ranks its trials by (--objective); a study that
    stores none was started when loss was the only objective."""
    return study.user_attrs.get(STUDY_OBJECTIVE_ATTR, "loss")


def finished(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The trials that count for best: COMPLETE, with a value."""
    return [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]


def figure(trial: FrozenTrial, name: str) -> float:
    """The trial's final 'loss' or 'accuracy' on the set that judged it (nan when missing)."""
    split = eval_split(trial.user_attrs)
    value = trial.user_attrs.get(accuracy_attr(split) if name == "accuracy" else loss_attr(split))
    return math.nan if value is None else float(value)


def rank_key(trial: FrozenTrial) -> tuple[float, float, int]:
    """Lower is better: the value, then the loss on the same set, then the trial number."""
    return trial.value, _missing_last(figure(trial, "loss")), trial.number


def best_trial(trials: list[FrozenTrial]) -> FrozenTrial | None:
    """The finished trial with the lowest value, ties broken by rank_key; None before any."""
    return min(finished(trials), key=rank_key, default=None)


def other_best(study: optuna.Study, trials: list[FrozenTrial]) -> tuple[str, FrozenTrial] | None:
    """The best finished trial by the figure the study does not rank by, when it is not the
    study's best: ('lowest loss', trial) for a study ranked by accuracy, ('highest accuracy',
    trial) for one ranked by loss. Figures are on the set that judged each trial; equal ones go
    to the lower loss, then the lower number."""
    best = best_trial(trials)
    if best is None:
        return None
    if ranked_by(study) == "loss":
        label, first = "highest accuracy", (lambda t: -figure(t, "accuracy"))
    else:
        label, first = "lowest loss", (lambda t: figure(t, "loss"))
    other = min(
        finished(trials),
        key=lambda t: (_missing_last(first(t)), _missing_last(figure(t, "loss")), t.number),
    )
    return None if other.number == best.number else (label, other)


def _missing_last(value: float) -> float:
    return math.inf if math.isnan(value) else value


def selection_note(trial: FrozenTrial, objective: str) -> str:
    """One line on how far the best trial's test accuracy can be trusted, and how to get a
    figure that can: the test set picked it (optimistic), or a validation part did."""
    if eval_split(trial.user_attrs) == "val":
        return (
            "Picked on the validation part: its test accuracy, scored once after training, is "
            "an unbiased figure."
        )
    points = TEST_SELECTION_BIAS_POINTS[objective]
    return (
        f"The test set also picked this trial, so its test accuracy reads about {points:.1f} "
        "points high (40-trial studies, 1 000 test photos); --val-fraction 0.2 gives an "
        "unbiased figure."
    )
