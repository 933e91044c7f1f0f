"""When does test loss start to rank configurations? Per epoch, over a recording's runs.

    python -m benchmarks.search.signal benchmarks/search/recordings/dev-2000-128px.json

For each epoch e: how many runs sit at exactly 50.0 % test accuracy (a constant prediction), and
the rank correlation (Spearman) between the test loss after epoch e and what the run reaches
(its accuracy after the last epoch, and its best accuracy over epochs e..max): a pruner's rung at
epoch e decides on noise where that correlation is near zero, and against the good runs where
it is positive (a lower loss there going with a lower final accuracy).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from benchmarks.search.recording import Recording, load_recording


def _ranks(values: np.ndarray) -> np.ndarray:
    order = values.argsort(kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    for value in np.unique(values):  # ties share their mean rank
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = _ranks(np.asarray(a, float)), _ranks(np.asarray(b, float))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def signal_table(recording: Recording, shuffle: bool | None = True) -> str:
    runs = [
        r
        for r in recording.runs
        if r.epochs == recording.max_epochs and (shuffle is None or r.shuffle == shuffle)
    ]
    final = np.array([r.test_accuracy[-1] for r in runs])
    lines = [
        f"{len(runs)} runs (shuffle {'any' if shuffle is None else 'on' if shuffle else 'off'}; "
        "diverged runs left out). Negative correlation: a lower loss goes with a higher accuracy.",
        "",
        "| epoch | at 50.0 % | median test loss | ρ(loss, final acc) "
        "| ρ(loss, best acc from here) |",
        "|---|---|---|---|---|",
    ]
    for epoch in range(1, recording.max_epochs + 1):
        loss = np.array([r.test_loss[epoch - 1] for r in runs])
        later_best = np.array([max(r.test_accuracy[epoch - 1 :]) for r in runs])
        at_chance = sum(r.test_accuracy[epoch - 1] == 0.5 for r in runs)
        lines.append(
            f"| {epoch} | {at_chance} of {len(runs)} | {np.median(loss):.3f} | "
            f"{spearman(loss, final):+.2f} | {spearman(loss, later_best):+.2f} |"
        )
    return "\n".join(lines) + "\n"


def seed_noise(recording: Recording) -> str:
    """How far two training seeds of the same configuration land apart, per epoch."""
    pairs = {}
    for run in recording.runs:
        pairs.setdefault((run.optimizer, run.lr, run.shuffle), []).append(run)
    pairs = {k: v for k, v in pairs.items() if len(v) >= 2 and k[2]}
    if not pairs:
        return "No configuration has two recorded seeds.\n"
    lines = [
        f"{len(pairs)} shuffle-on configurations with two seeds: |accuracy difference| "
        "between the seeds, in points",
        "",
        "| epoch | mean | median | max |",
        "|---|---|---|---|",
    ]
    for epoch in (1, 2, 3, 5, 10, 15, 20):
        diffs = [
            100 * abs(a.test_accuracy[epoch - 1] - b.test_accuracy[epoch - 1])
            for a, b, *_ in pairs.values()
            if min(a.epochs, b.epochs) >= epoch
        ]
        if diffs:
            lines.append(
                f"| {epoch} | {np.mean(diffs):.1f} | {np.median(diffs):.1f} | {max(diffs):.1f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recording", type=Path)
    args = parser.parse_args(argv)
    recording = load_recording(args.recording)
    print(signal_table(recording))
    print(seed_noise(recording))
    return 0


if __name__ == "__main__":
    sys.exit(main())
