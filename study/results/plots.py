"""The files `catdog-study report` writes: PNG plots of a study and summary.md.

Everything is read from the storage as it is, so a study that is still running gets a report of
what has happened so far; the best trial's confusion matrix also reads its model and the test
set (study.results.per_class). A plot that has nothing to show yet (no finished trial, too few
for importances) is skipped with the reason, never drawn empty.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
from matplotlib.figure import Figure
from optuna.trial import FrozenTrial, TrialState

from catdog.atomic import atomic_write
from catdog.errors import CatdogError
from catdog.paper import PAPER_RUNS
from study.attrs import STUDY_DATA_ATTR, TEST_ACCURACY_ATTR, eval_split
from study.results.curves import (
    curves_figure,
    describe_outcome,
    draw_curves,
    read_curves,
    save_png,
)
from study.results.labels import data_caption, on_off
from study.results.per_class import CONFUSION_PNG, TestAnswers, answers_markdown, confusion_figure
from study.results.summary import (
    best_trial,
    compares_with_report,
    paper_comparisons,
    study_is_synthetic,
    study_summary,
    trial_table,
)


class NothingToPlot(CatdogError):
    """A plot has no data yet; the message says why."""


@dataclass(frozen=True)
class ReportFile:
    name: str
    written: bool
    reason: str = ""  # why it was skipped


def objective_name(study: optuna.Study, trials: list[FrozenTrial]) -> str:
    """The study's objective as it names it ('test loss', 'test error (1 - accuracy)'); for a
    study without a name, 'test loss' or 'validation loss' as the trials chose."""
    if study.metric_names:
        return study.metric_names[0]
    on_val = {eval_split(t.user_attrs) == "val" for t in trials}
    if on_val == {True}:
        return "validation loss"
    return "objective (test or validation loss)" if on_val == {True, False} else "test loss"


def best_trial_figure(study: optuna.Study, trials: list[FrozenTrial]) -> Figure:
    best = best_trial(trials)
    if best is None:
        raise NothingToPlot("no trial has finished yet")
    caption = data_caption(study.user_attrs.get(STUDY_DATA_ATTR))
    figure = curves_figure(best, f"best of {len(trials)} trials", caption=caption)
    if figure is None:
        raise NothingToPlot(f"best trial {best.number} stored no learning curves")
    return figure


def paper_runs_figure(study: optuna.Study, trials: list[FrozenTrial]) -> Figure:
    """The report's four runs, one row each: loss and accuracy, with the published accuracy."""
    comparisons = paper_comparisons(trials)
    if not any(c.trial and read_curves(c.trial.user_attrs) for c in comparisons):
        raise NothingToPlot("none of the report's four configurations has finished an epoch")
    published = compares_with_report(study)  # the report's figures are about cats and dogs
    figure = Figure(figsize=(11, 14), layout="constrained")
    rows = figure.subplots(len(comparisons), 2, squeeze=False)
    for (loss_axes, accuracy_axes), comparison in zip(rows, comparisons, strict=True):
        trial = comparison.trial
        curves = read_curves(trial.user_attrs) if trial else None
        title = comparison.run.label
        if curves is None:
            for axes in (loss_axes, accuracy_axes):
                axes.set_axis_off()
            waiting = f"trial {trial.number} {describe_outcome(trial)}" if trial else "not queued"
            loss_axes.set_title(f"{title}: no epoch finished yet ({waiting})")
            continue
        draw_curves(
            loss_axes,
            accuracy_axes,
            curves,
            published_accuracy=comparison.run.published_test_accuracy if published else None,
        )
        loss_axes.set_title(f"{title}: trial {trial.number} ({describe_outcome(trial)})")
        accuracy_axes.set_title(title)
    synthetic = study_is_synthetic(study)
    ours = "this study's curves (SYNTHETIC data)" if synthetic else "this study's curves"
    if published:
        ours += (
            ";\ndashed: the report's published test accuracy (real cats vs dogs, 256 px, "
            "10 epochs)"
        )
    figure.suptitle(f"The report's four configurations: {ours}")
    return figure


def optimization_history_figure(study: optuna.Study, trials: list[FrozenTrial]) -> Figure:
    """Objective per trial, pruned trials at their last reported value, and the best so far."""
    finished = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    pruned = [t for t in trials if t.state == TrialState.PRUNED and t.intermediate_values]
    if not finished and not pruned:
        raise NothingToPlot("no trial has finished or been pruned yet")
    name = objective_name(study, trials)
    figure = Figure(figsize=(9, 5), layout="constrained")
    axes = figure.subplots()
    if finished:
        axes.plot([t.number for t in finished], [t.value for t in finished], "o", label="finished")
        best_so_far, best = [], math.inf
        for trial in finished:
            best = min(best, trial.value)
            best_so_far.append(best)
        numbers = [t.number for t in finished]
        axes.step(numbers, best_so_far, where="post", color="C3", label="best so far")
    if pruned:
        last = [t.intermediate_values[max(t.intermediate_values)] for t in pruned]
        axes.plot([t.number for t in pruned], last, "x", color="C7", label=f"pruned (last {name})")
    values = [t.value for t in finished] + [min(t.intermediate_values.values()) for t in pruned]
    if min(values) > 0 and max(values) / min(values) > 20:
        axes.set_yscale("log")  # a diverged trial would flatten every other one
    axes.set_xlabel("trial number")
    axes.set_ylabel(name)
    axes.grid(alpha=0.3)
    axes.legend()
    axes.set_title(_with_data(study, f"Optimization history: {name} per trial"))
    return figure


def importances_figure(study: optuna.Study, trials: list[FrozenTrial]) -> Figure:
    finished = [t for t in trials if t.state == TrialState.COMPLETE]
    if len(finished) < 2:
        raise NothingToPlot(f"{len(finished)} finished trial(s); importances need at least 2")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-API and few-trials warnings
            importances = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError) as error:
        raise NothingToPlot(f"optuna.importance could not rank parameters: {error}") from None
    if not importances:
        raise NothingToPlot("the finished trials share no varied parameter")
    names = list(importances)[::-1]  # most important at the top
    figure = Figure(figsize=(8, 4), layout="constrained")
    axes = figure.subplots()
    axes.barh(
        names,
        [importances[n] for n in names],
        color="C0",
        label=f"importance for {objective_name(study, trials)} ({len(finished)} finished trials)",
    )
    axes.set_xlabel("importance (PED-ANOVA, normalised to sum 1)")
    axes.set_ylabel("parameter")
    axes.grid(alpha=0.3, axis="x")
    axes.legend(loc="lower right")
    axes.set_title(_with_data(study, "Parameter importances (optuna.importance)"))
    return figure


def accuracy_by_group_figure(study: optuna.Study, trials: list[FrozenTrial]) -> Figure:
    """Test accuracy of every finished trial, by optimizer and shuffle, with the report's."""
    finished = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and t.user_attrs.get(TEST_ACCURACY_ATTR) is not None
    ]
    if not finished:
        raise NothingToPlot("no trial has finished yet")
    groups = sorted(
        {(t.params.get("optimizer", "?"), t.params.get("shuffle")) for t in finished}
        | {(run.optimizer, run.shuffle) for run in PAPER_RUNS},
        key=lambda g: (str(g[0]), not g[1]),
    )
    labels = [f"{optimizer}\nshuffle {on_off(shuffle)}" for optimizer, shuffle in groups]
    jitter = random.Random(0)  # fixed spread: the same study always gives the same picture
    figure = Figure(figsize=(9, 5), layout="constrained")
    axes = figure.subplots()
    ours = "this study, each finished trial"
    ours += " (SYNTHETIC data)" if study_is_synthetic(study) else ""
    x, y = [], []
    for trial in finished:
        group = (trial.params.get("optimizer", "?"), trial.params.get("shuffle"))
        x.append(groups.index(group) + jitter.uniform(-0.3, 0.05))  # left of the report's
        y.append(100 * trial.user_attrs[TEST_ACCURACY_ATTR])
    axes.plot(x, y, "o", alpha=0.7, label=ours)
    if compares_with_report(study):  # the report's figures are about cats and dogs
        published = [
            (groups.index((run.optimizer, run.shuffle)) + 0.2, run.published_test_accuracy)
            for run in PAPER_RUNS
        ]
        axes.plot(
            [p[0] for p in published],
            [p[1] for p in published],
            "D",
            color="black",
            markersize=9,
            label="report's published test accuracy (real cats vs dogs)",
        )
    axes.set_xticks(range(len(groups)), labels)
    axes.set_xlim(-0.5, len(groups) - 0.5)
    axes.set_xlabel("optimizer and shuffle")
    axes.set_ylabel("test accuracy (%)")
    axes.grid(alpha=0.3, axis="y")
    axes.legend(loc="best", fontsize="small")
    axes.set_title(_with_data(study, "Test accuracy by optimizer and shuffle"))
    return figure


def _with_data(study: optuna.Study, title: str) -> str:
    caption = data_caption(study.user_attrs.get(STUDY_DATA_ATTR))
    return f"{title}\n{caption}" if caption else title


PLOTS: dict[str, Callable[[optuna.Study, list[FrozenTrial]], Figure]] = {
    "curves-best-trial.png": best_trial_figure,
    "curves-report-configurations.png": paper_runs_figure,
    "optimization-history.png": optimization_history_figure,
    "param-importances.png": importances_figure,
    "accuracy-by-shuffle-optimizer.png": accuracy_by_group_figure,
}
SUMMARY_NAME = "summary.md"


def write_report(
    study: optuna.Study,
    out: Path,
    *,
    trials: list[FrozenTrial] | None = None,
    answers: TestAnswers | str | None = None,
) -> list[ReportFile]:
    """Write every plot that has data, and summary.md, into `out`; returns what was written.

    trials: the snapshot to report (default: the study's trials now), so the files agree;
    answers: the best trial's answers on the test set (per_class.best_trial_answers), drawn as
    CONFUSION_PNG and summed up in summary.md, or why there are none (the PNG is skipped).
    """
    out.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False) if trials is None else trials
    written = []
    for name, make in PLOTS.items():
        try:
            save_png(make(study, trials), out / name)
        except NothingToPlot as reason:
            written.append(ReportFile(name, False, str(reason)))
        else:
            written.append(ReportFile(name, True))
    if isinstance(answers, TestAnswers):
        caption = data_caption(study.user_attrs.get(STUDY_DATA_ATTR))
        save_png(confusion_figure(answers, caption), out / CONFUSION_PNG)
        written.append(ReportFile(CONFUSION_PNG, True))
    elif answers is not None:
        written.append(ReportFile(CONFUSION_PNG, False, answers))
    plots = [f.name for f in written if f.written]
    per_class = answers if isinstance(answers, TestAnswers) else None
    with atomic_write(out / SUMMARY_NAME) as temporary:
        text = summary_markdown(study, trials, plots, per_class)
        temporary.write_text(text, encoding="utf-8")
    written.append(ReportFile(SUMMARY_NAME, True))
    return written


def summary_markdown(
    study: optuna.Study,
    trials: list[FrozenTrial],
    plots: list[str],
    answers: TestAnswers | None = None,
) -> str:
    """The dashboard's study note, the best trial class by class, every trial and the plots."""
    lines = [study_summary(study, trials)]
    if answers is not None:
        lines.append(answers_markdown(answers))
    lines += [
        "### All trials",
        "",
        "Finished trials by objective value, then the others by number; epochs are run/planned.",
        "",
        trial_table(trials).as_markdown(),
        "",
    ]
    if plots:
        lines += ["### Plots", ""] + [f"![{name}]({name})" for name in plots] + [""]
    return "\n".join(lines)
