"""A trial's learning curves: read from its user attrs and drawn as loss and accuracy panels.

Each trial stores per-epoch lists (see study/attrs.py). A trial evaluated on a validation
split (user attr `eval_split` == "val") keeps its per-epoch evaluation curves as `epoch_val_*`
and scores the test set once at the end; any other trial evaluates on the test set every epoch
(`epoch_test_*`). The panels mirror the report's figures: train vs evaluation loss, and train vs
evaluation accuracy, per epoch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from optuna.trial import FrozenTrial, TrialState

from catdog.atomic import atomic_write
from study.attrs import curve_attrs, eval_split
from study.results.labels import describe_setting

PNG_DPI = 100


@dataclass(frozen=True)
class LearningCurves:
    train_loss: list[float]  # one value per finished epoch
    train_accuracy: list[float]  # fractions in [0, 1]
    eval_loss: list[float]
    eval_accuracy: list[float]
    eval_name: str  # "test" or "validation": the split the evaluation curves are on

    @property
    def epochs(self) -> int:
        return len(self.eval_loss)


def read_curves(user_attrs: Mapping[str, Any]) -> LearningCurves | None:
    """The curves stored on a trial, or None before its first epoch has finished."""
    split = eval_split(user_attrs)
    stored = {name: list(user_attrs.get(attr) or []) for attr, name in curve_attrs(split).items()}
    if not stored["eval_loss"]:
        return None
    return LearningCurves(
        stored["train_loss"],
        stored["train_accuracy"],
        stored["eval_loss"],
        stored["eval_accuracy"],
        "validation" if split == "val" else "test",
    )


def describe_outcome(trial: FrozenTrial) -> str:
    """How far a trial got: 'complete', 'pruned after epoch 2 of 10', 'running, epoch 3 of 10'."""
    planned = trial.params.get("epochs")
    curves = read_curves(trial.user_attrs)
    done = curves.epochs if curves else 0
    of = f" of {planned}" if planned is not None else ""
    if trial.state == TrialState.COMPLETE:
        return "complete"
    if trial.state == TrialState.PRUNED:
        return f"pruned after epoch {done}{of}"
    if trial.state == TrialState.RUNNING:
        return f"running, epoch {done}{of}" if done else "running, no epoch finished yet"
    return trial.state.name.lower()


def draw_curves(
    loss_axes: Axes,
    accuracy_axes: Axes,
    curves: LearningCurves,
    *,
    published_accuracy: float | None = None,
) -> None:
    """Train vs evaluation loss on one axes, train vs evaluation accuracy (%) on the other.

    published_accuracy (percent) adds the report's figure as a dashed line, for the report runs.
    """
    epochs = range(1, curves.epochs + 1)
    loss_axes.plot(epochs, curves.train_loss[: curves.epochs], "o-", label="train loss")
    loss_axes.plot(epochs, curves.eval_loss, "s-", label=f"{curves.eval_name} loss")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("cross-entropy loss")
    percent = [100 * a for a in curves.train_accuracy[: curves.epochs]]
    accuracy_axes.plot(epochs, percent, "o-", label="train accuracy")
    accuracy_axes.plot(
        epochs, [100 * a for a in curves.eval_accuracy], "s-", label=f"{curves.eval_name} accuracy"
    )
    if published_accuracy is not None:
        accuracy_axes.axhline(
            published_accuracy,
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"report's published test accuracy ({published_accuracy:g} %)",
        )
    accuracy_axes.set_xlabel("epoch")
    accuracy_axes.set_ylabel("accuracy (%)")
    for axes in (loss_axes, accuracy_axes):
        axes.set_xticks(list(epochs) if curves.epochs <= 20 else axes.get_xticks())
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")


def trial_title(trial: FrozenTrial | optuna.Trial, outcome: str) -> str:
    """E.g. 'trial 7: adam lr 0.00296, shuffle on (pruned after epoch 2 of 10)'."""
    return f"trial {trial.number}: {describe_setting(trial.params)} ({outcome})"


def curves_figure(
    trial: FrozenTrial | optuna.Trial, outcome: str, *, caption: str = ""
) -> Figure | None:
    """One trial's two panels side by side, or None when it has no finished epoch."""
    curves = read_curves(trial.user_attrs)
    if curves is None:
        return None
    figure = Figure(figsize=(10, 4))
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    draw_curves(loss_axes, accuracy_axes, curves)
    figure.suptitle(trial_title(trial, outcome) + (f"\n{caption}" if caption else ""))
    # Fixed margins (fractions of the 10 x 4 in figure), not a constrained layout: every trial
    # draws one as it ends, and the layout engine took about 40 % of its 0.16-0.25 s (2-core VM).
    figure.subplots_adjust(left=0.075, right=0.985, bottom=0.12, top=0.83, wspace=0.2)
    return figure


def save_png(figure: Figure, path: Path) -> Path:
    """Write the figure as a PNG; a crash never leaves a half-written file at `path`."""
    with atomic_write(path) as temporary:
        figure.savefig(temporary, format="png", dpi=PNG_DPI)
    return path
