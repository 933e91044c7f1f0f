"""Studies built by hand, trial by trial, with the user attrs a real study stores."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from catdog.paper import PAPER_RUNS
from study.attrs import PAPER_RUN_ATTR, SEARCH_SPACE_ATTR, STUDY_DATA_ATTR
from study.data.source import data_source
from study.run.study import data_key
from study.space.builtin import report_space

DISTRIBUTIONS = {
    "optimizer": CategoricalDistribution(["sgd", "adam"]),
    "lr": FloatDistribution(1e-4, 0.3, log=True),
    "shuffle": CategoricalDistribution([True, False]),
    "epochs": IntDistribution(1, 10),
}
SYNTHETIC_DATA = "SYNTHETIC shapes, 64 px"


def made_trial(
    params: dict,
    accuracies: list[float],
    *,
    state: TrialState = TrialState.COMPLETE,
    label: str | None = None,
    eval_split: str = "test",
) -> optuna.trial.FrozenTrial:
    """A trial whose evaluation accuracy per epoch is `accuracies`; loss falls as it rises."""
    losses = [round(1.0 - a, 4) for a in accuracies]
    split = "val" if eval_split == "val" else "test"
    attrs = {
        "epoch_train_loss": [loss * 0.9 for loss in losses],
        "epoch_train_accuracy": [min(a + 0.05, 1.0) for a in accuracies],
        f"epoch_{split}_loss": losses,
        f"epoch_{split}_accuracy": accuracies,
        "epoch_seconds": [1.0] * len(accuracies),
        "test_loss": losses[-1] if losses else None,
        "test_accuracy": accuracies[-1] if accuracies else None,
        "data": "SYNTHETIC shapes from test-data, 64 px",
    }
    if eval_split == "val":
        attrs["eval_split"] = "val"
        attrs["val_loss"], attrs["val_accuracy"] = losses[-1], accuracies[-1]
        attrs["test_loss"], attrs["test_accuracy"] = 0.5, 0.75  # scored once, at the end
    if label:
        attrs[PAPER_RUN_ATTR] = label
    return create_trial(
        state=state,
        params=params,
        distributions=DISTRIBUTIONS,
        value=losses[-1] if state == TrialState.COMPLETE else None,
        intermediate_values=dict(enumerate(losses, start=1)),
        user_attrs=attrs,
    )


def report_params(index: int, epochs: int = 4) -> dict:
    return PAPER_RUNS[index].params(epochs)


def made_study(storage: str, name: str = "made") -> optuna.Study:
    """A study part-way through: three report runs done (one still running), searched trials
    complete and pruned, one trial chosen on a validation split."""
    study = optuna.create_study(storage=storage, study_name=name, direction="minimize")
    study.set_user_attr("data", SYNTHETIC_DATA)
    labels = [run.label for run in PAPER_RUNS]
    trials = [
        made_trial(report_params(0), [0.55, 0.6, 0.62, 0.64], label=labels[0]),
        made_trial(report_params(1), [0.6, 0.7, 0.8, 0.85], label=labels[1]),
        made_trial(report_params(2), [0.5, 0.5, 0.5, 0.5], label=labels[2]),
        made_trial(report_params(3), [0.5, 0.5], state=TrialState.RUNNING, label=labels[3]),
        made_trial(
            {"optimizer": "adam", "lr": 0.003, "shuffle": True, "epochs": 6},
            [0.7, 0.8, 0.85, 0.88, 0.9, 0.91],
        ),
        made_trial(
            {"optimizer": "sgd", "lr": 0.0002, "shuffle": True, "epochs": 8},
            [0.5, 0.52],
            state=TrialState.PRUNED,
        ),
        made_trial(
            {"optimizer": "adam", "lr": 0.001, "shuffle": False, "epochs": 3},
            [0.6, 0.65, 0.7],
            eval_split="val",
        ),
    ]
    for trial in trials:
        study.add_trial(trial)
    return study


def study_before_the_objective(
    storage: str, data: Path, *, max_epochs: int, name: str = "catdog"
) -> optuna.Study:
    """An empty study as `optimize` left it before a study stored its objective (each ranked
    its trials by test loss then): its space and data attrs, no objective, no metric name."""
    space = report_space(max_epochs)
    study = optuna.create_study(storage=storage, study_name=name, direction="minimize")
    stored_space = {"name": space.name, "fingerprint": space.fingerprint(), **space.to_dict()}
    study.set_user_attr(SEARCH_SPACE_ATTR, stored_space)
    study.set_user_attr(STUDY_DATA_ATTR, data_key(data_source(data)))
    return study
