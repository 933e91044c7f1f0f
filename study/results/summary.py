"""What a study has found so far, as text: the trials table and the study's markdown summary.

The summary puts the report's four published results next to this study's own trials of the
same four configurations (for a study of cats and dogs: the report's figures are about them
alone), names the best trial, and counts pruned trials. It is the dashboard's
study note and the top of `catdog-study report`'s summary.md. Everything here is computed from
the storage alone, so it works on a study that is still running.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from catdog.classes import is_report_pair
from catdog.paper import PAPER_RUNS, PaperRun
from study.attrs import (
    CONFIG_ATTR,
    PAPER_RUN_ATTR,
    STUDY_DATA_ATTR,
    TEST_ACCURACY_ATTR,
    TEST_LOSS_ATTR,
    accuracy_attr,
    eval_split,
    is_synthetic,
    loss_attr,
    study_classes,
)
from study.optuna_private import queued_params
from study.results.best import (
    best_trial,
    finished,
    other_best,
    rank_key,
    ranked_by,
    selection_note,
)
from study.results.curves import describe_outcome, read_curves
from study.results.labels import describe_config, describe_setting, number, on_off, percent
from study.space.dimensions import to_config

# A report configuration may have several trials (a failed one is queued again); this order
# picks the one to show.
STATE_PREFERENCE = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.PRUNED, TrialState.WAITING)


@dataclass(frozen=True)
class PaperComparison:
    run: PaperRun
    trial: FrozenTrial | None  # this study's trial of the same configuration, if any


def paper_comparisons(trials: list[FrozenTrial]) -> list[PaperComparison]:
    """Each of the report's four runs with the study's trial of it (None when never queued)."""

    def rank(trial: FrozenTrial) -> tuple[int, int]:  # preferred state first, then the latest
        state = trial.state
        order = STATE_PREFERENCE.index(state) if state in STATE_PREFERENCE else 9
        return order, -trial.number

    comparisons = []
    for run in PAPER_RUNS:
        candidates = [t for t in trials if t.user_attrs.get(PAPER_RUN_ATTR) == run.label]
        comparisons.append(PaperComparison(run, min(candidates, key=rank, default=None)))
    return comparisons


def planned_params(trial: FrozenTrial) -> dict:
    """The trial's parameters; for a queued trial not started yet, the ones it will run with."""
    return trial.params or queued_params(trial)


def study_is_synthetic(study: optuna.Study) -> bool:
    """True when the study's trials are judged on the SYNTHETIC set."""
    return is_synthetic(study.user_attrs.get(STUDY_DATA_ATTR))


def compares_with_report(study: optuna.Study) -> bool:
    """True when the study's classes are cat and dog, the classes of the report's published
    figures (real photos or the SYNTHETIC stand-in for them); for other classes the report's
    four configurations are only four starting points."""
    return is_report_pair(study_classes(study.user_attrs))


def describe_best(study: optuna.Study) -> str:
    """Optuna's best trial for the terminal, and the best by the other figure when it differs,
    or why there is none."""
    trials = study.get_trials(deepcopy=False)
    best = best_trial(trials)
    if best is None:
        return "no trial has finished yet, so there is no best trial"
    lines = [f"best trial {best.number}: {_config_and_figures(best)}"]
    lines.append(f"  {selection_note(best, ranked_by(study))}")
    other = other_best(study, trials)
    if other is not None:
        label, trial = other
        lines.append(f"{label}: trial {trial.number}: {_config_and_figures(trial)}")
    return "\n".join(lines)


def _config_and_figures(trial: FrozenTrial) -> str:
    attrs, nan = trial.user_attrs, float("nan")
    config = to_config(attrs.get(CONFIG_ATTR) or trial.params)
    figures = (
        f"test loss {attrs.get(TEST_LOSS_ATTR, trial.value):.4f}, "
        f"test accuracy {attrs.get(TEST_ACCURACY_ATTR, nan):.2%}"
    )
    if eval_split(attrs) == "val":  # the objective is on the validation part; test comes last
        figures = (
            f"validation loss {attrs.get(loss_attr('val'), nan):.4f}, "
            f"validation accuracy {attrs.get(accuracy_attr('val'), nan):.2%}; {figures}"
        )
    return f"{describe_config(config)}\n  {figures}"


def study_summary(study: optuna.Study, trials: list[FrozenTrial] | None = None) -> str:
    """The markdown summary (dashboard study note and summary.md) from the storage as it is now."""
    trials = study.get_trials(deepcopy=False) if trials is None else trials
    synthetic = study_is_synthetic(study)
    published = compares_with_report(study)
    data = study.user_attrs.get(STUDY_DATA_ATTR, "unknown data")
    ours = "this study (SYNTHETIC data)" if synthetic else "this study"
    classes = study_classes(study.user_attrs)
    lines = [f"## Study `{study.study_name}`", ""]
    if synthetic and published:
        lines += [
            f"**Data: {data}.** Every figure from this study is on the SYNTHETIC set (ellipses "
            "vs polygons), not on cats and dogs; only the report's column is about cats and "
            "dogs (real photos, 256 px).",
            "",
        ]
    elif synthetic:
        lines += [
            f"**Data: {data}; classes: {', '.join(classes)}.** Every figure from this study is "
            "on the SYNTHETIC set, not on cats and dogs.",
            "",
        ]
    elif published:
        lines += [f"Data: {data}.", ""]
    else:
        lines += [f"Data: {data}; classes: {', '.join(classes)}.", ""]
    lines += ["### The report's four configurations", ""]
    if published:
        lines += [
            f"| configuration | report: test accuracy (published) | {ours}: test accuracy "
            "| test loss | epochs run | trial |",
            "|---|---:|---:|---:|---|---|",
        ]
    else:
        lines += [
            f"| configuration | {ours}: test accuracy | test loss | epochs run | trial |",
            "|---|---:|---:|---|---|",
        ]
    for comparison in paper_comparisons(trials):
        lines.append(_comparison_row(comparison, published=published))
    if published:
        note = (
            "The report trained each configuration for 10 epochs on 8 000 real photos and "
            "tested on 2 000; a study with `--max-epochs` below 10 runs them shorter."
        )
    else:
        note = (
            "The report's published accuracies are about cats and dogs, so none is shown "
            "beside these classes; its four configurations are where a new study starts its "
            "search (unless `--no-seed-configs`). With shuffle off every epoch ends on the "
            f"last class, so those runs tend to answer it: about {100 / len(classes):.0f} % "
            "(the report's two classes: 50 %)."
        )
    lines += [
        "",
        note,
        "",
        "### Best trial",
        "",
        _best_paragraph(study, trials),
        "",
        "### Trials",
        "",
        _counts_paragraph(trials),
        "",
        "Each trial's learning curves are in its note (Trials) and under its Artifacts "
        "(`trial-N-learning-curves.png`).",
        "",
        f"_Written by catdog-study {_refreshed_after(trials)}; edits here are overwritten._",
    ]
    return "\n".join(lines) + "\n"


def _comparison_row(comparison: PaperComparison, *, published: bool = True) -> str:
    """A table row; published: with the report's own figure, for a study of cats and dogs."""
    run, trial = comparison.run, comparison.trial
    label = f"{run.label} | {run.published_test_accuracy:.2f} %" if published else run.label
    if trial is None:
        return f"| {label} | not run | – | – | – |"
    accuracy = trial.user_attrs.get(TEST_ACCURACY_ATTR)
    loss = trial.user_attrs.get(TEST_LOSS_ATTR)
    if trial.state != TrialState.COMPLETE:
        accuracy = loss = None  # a running trial's last epoch is not its result yet
    curves = read_curves(trial.user_attrs)
    planned = planned_params(trial).get("epochs", "?")
    epochs = f"{curves.epochs if curves else 0}/{planned}"
    return (
        f"| {label} | {percent(accuracy)} | {number(loss)} | {epochs} "
        f"| #{trial.number} ({describe_outcome(trial)}) |"
    )


def _best_paragraph(study: optuna.Study, trials: list[FrozenTrial]) -> str:
    best = best_trial(trials)
    if best is None:
        return "No trial has finished yet."
    by = "test loss" if ranked_by(study) == "loss" else "test accuracy"
    if eval_split(best.user_attrs) == "val":
        by = by.replace("test", "validation")
    text = f"By {by}: {_trial_sentence(best)} {selection_note(best, ranked_by(study))}"
    optunas = study.best_trial.number
    if optunas != best.number:  # the dashboard marks Optuna's: the first of equal values
        text += (
            f" (Optuna's own best trial, which the dashboard marks, is #{optunas}: as good by "
            f"{by}, with a higher loss.)"
        )
    other = other_best(study, trials)
    if other is not None:
        label, trial = other
        text += f"\n\nThe {label}: {_trial_sentence(trial)}"
    return text


def _trial_sentence(trial: FrozenTrial) -> str:
    accuracy = trial.user_attrs.get(TEST_ACCURACY_ATTR)
    label = trial.user_attrs.get(PAPER_RUN_ATTR)
    origin = f" (the report's configuration {label})" if label else ""
    epochs = trial.params.get("epochs", "?")
    loss = trial.user_attrs.get(TEST_LOSS_ATTR)
    figures = f"test loss {number(loss)}, test accuracy {percent(accuracy)}"
    if eval_split(trial.user_attrs) == "val":  # chosen on the validation part, not the test set
        val = trial.user_attrs
        figures = (
            f"validation loss {number(val.get(loss_attr('val')))}, validation accuracy "
            f"{percent(val.get(accuracy_attr('val')))}; {figures}"
        )
    setting = f"{describe_setting(trial.params)}, {epochs} epochs"
    return f"Trial #{trial.number}{origin}: {setting}: {figures}."


def _counts_paragraph(trials: list[FrozenTrial]) -> str:
    counts = {state: 0 for state in TrialState}
    for trial in trials:
        counts[trial.state] += 1
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    text = (
        f"{len(trials)} trials: {counts[TrialState.COMPLETE]} complete, "
        f"{counts[TrialState.PRUNED]} pruned, {counts[TrialState.FAIL]} failed, "
        f"{counts[TrialState.RUNNING]} running, {counts[TrialState.WAITING]} waiting."
    )
    if pruned:
        epochs = sorted({len(t.intermediate_values) for t in pruned})
        text += f" Pruned trials stopped after epoch {', '.join(map(str, epochs))}."
    return text


def _refreshed_after(trials: list[FrozenTrial]) -> str:
    """Names the last trial to end: deterministic, so equal storage gives equal text."""
    ended = [t for t in trials if t.state.is_finished() and t.datetime_complete]
    if not ended:
        return "before any trial ended"
    last = max(ended, key=lambda t: (t.datetime_complete, t.number))
    return f"after trial #{last.number} ended ({last.datetime_complete:%Y-%m-%d %H:%M:%S})"


@dataclass(frozen=True)
class TrialTable:
    columns: tuple[str, ...]
    rows: list[list[str]]

    def as_text(self) -> str:
        """Columns padded to their widest cell, for the terminal."""
        widths = [
            max([len(c)] + [len(r[i]) for r in self.rows]) for i, c in enumerate(self.columns)
        ]
        lines = [_padded(self.columns, widths)] + [_padded(row, widths) for row in self.rows]
        return "\n".join(lines)

    def as_markdown(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


def _padded(cells, widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def trial_table(trials: list[FrozenTrial], *, now: datetime.datetime | None = None) -> TrialTable:
    """Every trial: finished ones best first (see study.results.best), then the rest by number.

    Where trials were chosen on a validation split, a `val loss` column shows the objective;
    otherwise the objective is the test loss column.
    """
    now = now or datetime.datetime.now()
    on_val = any(eval_split(t.user_attrs) == "val" for t in trials)
    columns = ("trial", "state", "optimizer", "lr", "shuffle", "epochs")
    columns += ("val loss",) * on_val + (
        "test loss",
        "test acc",
        "duration",
        "report configuration",
    )

    # A pruned trial's value is its last reported loss, not comparable with an error.
    ranked = sorted(finished(trials), key=rank_key)
    numbers = {t.number for t in ranked}
    rest = sorted((t for t in trials if t.number not in numbers), key=lambda t: t.number)
    rows = []
    for trial in ranked + rest:
        params, attrs = planned_params(trial), trial.user_attrs
        curves = read_curves(attrs)
        lr = params.get("lr")
        row = [
            str(trial.number),
            trial.state.name,
            str(params.get("optimizer", "–")),
            f"{lr:.3g}" if lr is not None else "–",
            on_off(params.get("shuffle"), missing="–"),
            f"{curves.epochs if curves else 0}/{params.get('epochs', '?')}",
        ]
        if on_val:
            chose_on_val = eval_split(attrs) == "val"
            row.append(number(attrs.get(loss_attr("val"), trial.value)) if chose_on_val else "–")
        row += [
            number(attrs.get(TEST_LOSS_ATTR)),
            percent(attrs.get(TEST_ACCURACY_ATTR)),
            _duration(trial, now),
            str(attrs.get(PAPER_RUN_ATTR, "")),
        ]
        rows.append(row)
    return TrialTable(columns, rows)


def _duration(trial: FrozenTrial, now: datetime.datetime) -> str:
    if trial.datetime_start is None:
        return "–"
    end = trial.datetime_complete or now
    seconds = (end - trial.datetime_start).total_seconds()
    text = f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"
    return text if trial.datetime_complete else f"{text} so far"
