"""Selection bias: how far the accuracy a study reports for its best trial overstates what that
trial scores on photos that did not pick it.

A study that selects on the test set (today's way) reports its best trial's test accuracy; one
that selects on a validation part (`optimize --val-fraction`) its validation accuracy, and scores
the test set once. Replayed on a recording that scored both sets after every epoch
(`record --val-fraction`), each study's best trial has both figures. Per study:

- reported: the best trial's accuracy on the set that picked it; unseen: on the other set;
- optimism: reported - unseen;
- set gap: what the two sets differ by where nothing was picked, at the best trial's accuracy:
  the mean of (test - validation accuracy) over the recording's run-epochs whose two accuracies
  average within 2 points of the best trial's (at least the 20 nearest; never the run the best
  trial read, which was picked). The gap depends on the accuracy: on the dogs-cats-dev subset
  the test set scored 5 points above the validation part at 55-60 % and 1 point at 70-75 %
  (the first 12 runs, 2026-12-03), so one gap for all trials would mislead;
- selection bias: optimism - set gap (with the gap's sign for the set that picked), the part
  that comes from picking on that set.

Means and spreads are over sampler seeds; "±" after a mean of differences is its standard error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from benchmarks.search.recording import Recording, run_key
from benchmarks.search.spread import mean_sd, mean_se, percentile

if TYPE_CHECKING:
    from benchmarks.search.compare import Row
    from benchmarks.search.replay import TrialOutcome


GAP_WITHIN = 0.02  # run-epochs whose mean accuracy is this close to the best trial's ...
GAP_LEAST = 20  # ... and at least this many of the nearest


@dataclass(frozen=True)
class SetGaps:
    """(run key, mean of the two accuracies, test - validation accuracy) of every epoch of every
    recorded run: what the two sets differ by, nothing picked, at each accuracy."""

    points: tuple[tuple[tuple, float, float], ...]

    @classmethod
    def of(cls, recording: Recording) -> SetGaps:
        points = [
            (run.key, (test + val) / 2, test - val)
            for run in recording.runs
            if run.val_accuracy
            for test, val in zip(run.test_accuracy, run.val_accuracy, strict=False)
        ]
        return cls(tuple(points))

    def test_minus_val(self, best: TrialOutcome) -> float:
        """The gap near the best trial's accuracy, (test + val) / 2, from runs other than the
        one it read (which was picked); nan without points."""
        middle = (best.test_accuracy + best.val_accuracy) / 2
        own = run_key(best.optimizer, best.grid_lr, best.shuffle, best.recorded_seed)
        others = [(mean, gap) for key, mean, gap in self.points if key != own]
        if middle != middle or not others:
            return float("nan")
        nearest = sorted(others, key=lambda point: abs(point[0] - middle))
        near = [gap for mean, gap in nearest if abs(mean - middle) <= GAP_WITHIN]
        return mean_sd(near if len(near) >= GAP_LEAST else [g for _, g in nearest[:GAP_LEAST]])[0]


def bias_table(rows: list[Row]) -> list[dict]:
    """One dict per (candidate, objective, selecting set) of rows that hold validation figures:
    the best trial's test and validation accuracy, reported and unseen, optimism, set gap and
    selection bias (fractions, not points)."""
    groups: dict[tuple[str, str, str], list[Row]] = {}
    for row in rows:
        if row.best_val_accuracy == row.best_val_accuracy:  # nan: no validation part
            groups.setdefault((row.candidate, row.objective, row.select), []).append(row)
    table = []
    for (name, objective, select), of_key in groups.items():
        test = [r.best_accuracy for r in of_key]
        val = [r.best_val_accuracy for r in of_key]
        reported, unseen = (test, val) if select == "test" else (val, test)
        optimism = [a - b for a, b in zip(reported, unseen, strict=True)]
        gap = [r.set_gap for r in of_key]
        table.append(
            {
                "candidate": name,
                "objective": objective,
                "select": select,
                "seeds": len(of_key),
                "test_acc": mean_sd(test),
                "test_acc_p10": percentile(test, 0.1),
                "val_acc": mean_sd(val),
                "reported": mean_sd(reported)[0],
                "unseen": mean_sd(unseen)[0],
                "optimism": mean_se(optimism),
                "gap": mean_se(gap),
                "bias": mean_se(o - g for o, g in zip(optimism, gap, strict=True)),
            }
        )
    return table


def paired_test_accuracy(rows: list[Row], first: tuple[str, str], second: tuple[str, str]):
    """Mean ± standard error, over seeds (and candidates), of the best trial's test accuracy
    in studies of `second` minus `first`, each an (objective, selecting set) pair."""
    by_key = {(r.candidate, r.seed, r.objective, r.select): r.best_accuracy for r in rows}
    differences = [
        by_key[(name, seed, *second)] - value
        for (name, seed, *key), value in by_key.items()
        if tuple(key) == first and (name, seed, *second) in by_key
    ]
    return mean_se(differences), len(differences)


def bias_markdown(table: list[dict], recording: Recording, rows: list[Row]) -> str:
    """The table and the paired comparisons a reader asks first, as markdown."""
    meta = recording.meta
    lines = [
        "## Selection bias",
        "",
        f"Each epoch scored on {meta.get('val_images')} validation photos (held out of the "
        f"training set; the runs trained on the other {meta.get('train_images')}) and on "
        f"{meta.get('test_images')} test photos. Per study: the trial it calls best, picked on "
        "the test set (today's way) or on the validation part (`--val-fraction`); reported: "
        "its accuracy on the set that picked it; unseen: on the other; optimism = reported − "
        "unseen; set gap: what the two sets differ by where nothing was picked, at the best "
        "trial's accuracy (recorded run-epochs within 2 points); selection bias = optimism − "
        "set gap. Mean ± sd over sampler seeds for accuracies, ± standard error for the last "
        "three.",
        "",
        "| candidate | objective | picked on | seeds | best's test acc % | p10 % "
        "| best's val acc % | reported % | unseen % | optimism (pts) | set gap (pts) "
        "| selection bias (pts) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        lines.append(
            f"| {r['candidate']} | {r['objective']} | {r['select']} | {r['seeds']} "
            f"| {_pct(*r['test_acc'])} | {100 * r['test_acc_p10']:.1f} | {_pct(*r['val_acc'])} "
            f"| {100 * r['reported']:.1f} | {100 * r['unseen']:.1f} | {_pts(*r['optimism'])} "
            f"| {_pts(*r['gap'])} | {_pts(*r['bias'])} |"
        )
    lines.append("")
    for objective in ("accuracy", "loss"):
        (mean, se), count = paired_test_accuracy(rows, (objective, "test"), (objective, "val"))
        if count:
            lines.append(
                f"- objective {objective}: best trial's test accuracy, picked on validation "
                f"minus picked on test: {_pts(mean, se)} points ({count} paired studies)"
            )
    for select in ("val", "test"):
        (mean, se), count = paired_test_accuracy(rows, ("loss", select), ("accuracy", select))
        if count:
            lines.append(
                f"- picked on {select}: best trial's test accuracy, objective accuracy minus "
                f"objective loss: {_pts(mean, se)} points ({count} paired studies)"
            )
    return "\n".join(lines) + "\n"


def _pct(mean: float, sd: float) -> str:
    return f"{100 * mean:.1f} ± {100 * sd:.1f}"


def _pts(mean: float, se: float) -> str:
    return f"{100 * mean:+.1f} ± {100 * se:.1f}"
