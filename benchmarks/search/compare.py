"""Compare search settings: replay many seeded studies of each candidate and summarise them.

    python -m benchmarks.search.compare benchmarks/search/recordings/dev-2000-128px.json \
        --seeds 100 --objectives loss accuracy --out benchmarks/search/results/dev-2000-128px

writes OUT.csv (one row per replayed study) and OUT.md (the summary table, one row per
candidate and objective). Studies of the same seed share the sampler's seed, so the first
candidate (the product's default, `today`) is compared with the others seed by seed.

On a recording with a validation part, `--select test val` replays every study both ways (see
replay.py) and OUT.md adds the selection-bias table (bias.py): the test accuracy of the trial
each study calls best, and how far the figure a study reports overstates what it scores on the
set that did not pick it.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import statistics
import sys
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import optuna

from benchmarks.search.bias import SetGaps, bias_markdown, bias_table
from benchmarks.search.candidates import DEFAULT_CANDIDATES, candidate
from benchmarks.search.recording import Recording, load_recording
from benchmarks.search.replay import (
    OBJECTIVES,
    PARTIAL_HELP,
    SELECTIONS,
    SIGNALS,
    StudyOutcome,
    replay_study,
)
from benchmarks.search.spread import mean_sd, percentile

REGION_WITHIN = 0.03  # a configuration is in the best region within 3 points of the best


def config_scores(recording: Recording, max_epochs: int | None = None) -> dict[tuple, float]:
    """Each (optimizer, lr, shuffle)'s best test accuracy over epoch counts 1..max_epochs, the
    accuracy at each count averaged over the recorded seeds: what a trial of it can reach."""
    max_epochs = max_epochs or recording.max_epochs
    runs: dict[tuple, list] = {}
    for run in recording.runs:
        runs.setdefault((run.optimizer, run.lr, run.shuffle), []).append(run)
    scores = {}
    for key, of_config in runs.items():
        best = 0.0
        for epoch in range(1, max_epochs + 1):
            values = [r.test_accuracy[epoch - 1] for r in of_config if r.epochs >= epoch]
            if len(values) == len(of_config):  # a diverged seed ends the curve
                best = max(best, statistics.fmean(values))
        scores[key] = best
    return scores


def best_region(recording: Recording, within: float = REGION_WITHIN) -> set[tuple]:
    scores = config_scores(recording)
    top = max(scores.values())
    return {key for key, score in scores.items() if score >= top - within}


@dataclass(frozen=True)
class Row:
    """What one replayed study gave, as one CSV row."""

    candidate: str
    objective: str
    signal: str
    seed: int
    best_accuracy: float  # test accuracy of the trial the study calls best (nan: none)
    best_trial: int
    best_is_report_run: bool
    max_final_accuracy: float  # highest final test accuracy of a finished trial
    max_seen_accuracy: float  # highest accuracy at the last epoch of any trial, pruned too
    epochs: int  # trained in the whole study: the cost
    seconds: float  # the recorded wall time of those epochs
    pruned: int
    failed: int
    region_trained: bool  # a trial of the best region ran at least half of max_epochs
    best_in_region: bool  # the study's best trial is of the best region
    # With a validation part (else "test" and nan): the set the study selected on, its best
    # trial's final validation accuracy, and what the selecting set scores above the other
    # where nothing is picked, at that trial's accuracy (see bias.SetGaps).
    select: str = "test"
    best_val_accuracy: float = float("nan")
    set_gap: float = float("nan")

    @classmethod
    def of(cls, outcome: StudyOutcome, region: set[tuple], max_epochs: int, gaps: SetGaps) -> Row:
        complete = [t for t in outcome.trials if t.state == "complete"]
        best = outcome.best
        in_region = [t for t in outcome.trials if (t.optimizer, t.grid_lr, t.shuffle) in region]
        gap = gaps.test_minus_val(best) if best else float("nan")
        return cls(
            candidate=outcome.candidate,
            objective=outcome.objective,
            signal=outcome.signal,
            seed=outcome.seed,
            best_accuracy=best.test_accuracy if best else float("nan"),
            best_trial=best.number if best else -1,
            best_is_report_run=bool(best and best.paper_run),
            max_final_accuracy=max((t.test_accuracy for t in complete), default=float("nan")),
            max_seen_accuracy=max(
                (t.test_accuracy for t in outcome.trials if t.epochs_run), default=float("nan")
            ),
            epochs=outcome.epochs,
            seconds=round(outcome.seconds, 1),
            pruned=outcome.count("pruned"),
            failed=outcome.count("failed"),
            region_trained=any(2 * t.epochs_run >= max_epochs for t in in_region),
            best_in_region=bool(best and (best.optimizer, best.grid_lr, best.shuffle) in region),
            select=outcome.select,
            best_val_accuracy=best.val_accuracy if best else float("nan"),
            set_gap=gap if outcome.select == "test" else -gap,
        )


def _replay_rows(job: tuple) -> list[Row]:
    path, names, objectives, signal, seed, trials, max_epochs, selects, partial = job
    # ERROR: a trial that fails as recorded (diverged, or not recorded yet) is part of a replay.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    recording = _load_cached(path)
    region, gaps = best_region(recording), SetGaps.of(recording)
    rows = []
    for select in selects:
        for objective in objectives:
            for name in names:
                outcome = replay_study(
                    recording,
                    candidate(name),
                    seed=seed,
                    trials=trials,
                    objective=objective,
                    signal=signal,
                    max_epochs=max_epochs,
                    select=select,
                    partial=partial,
                )
                rows.append(Row.of(outcome, region, max_epochs or recording.max_epochs, gaps))
    return rows


_LOADED: dict[str, Recording] = {}


def _load_cached(path: str) -> Recording:
    if path not in _LOADED:
        _LOADED[path] = load_recording(Path(path))
    return _LOADED[path]


def run_comparison(
    path: Path,
    names: Iterable[str],
    *,
    seeds: Iterable[int],
    objectives: Iterable[str] = ("loss",),
    signal: str = "loss",
    trials: int = 40,
    max_epochs: int | None = None,
    jobs: int = 1,
    selects: Iterable[str] = ("test",),
    partial: bool = False,
) -> list[Row]:
    names, selects = tuple(names), tuple(selects)
    for name in names:
        candidate(name)  # every name checked before anything runs
    if "val" in selects and not _load_cached(str(path)).has_validation:
        raise ValueError(f"{path} has no validation part: record it with --val-fraction")
    work = [
        (str(path), names, tuple(objectives), signal, seed, trials, max_epochs, selects, partial)
        for seed in seeds
    ]
    if jobs == 1:
        return [row for job in work for row in _replay_rows(job)]
    with ProcessPoolExecutor(jobs) as pool:
        return [row for rows in pool.map(_replay_rows, work) for row in rows]


def summarise(rows: list[Row], baseline: str = "today") -> list[dict]:
    """One dict per (objective, selecting set, candidate): means and spreads over seeds, paired
    to baseline."""
    by_key: dict[tuple[str, str, str], dict[int, Row]] = {}
    for row in rows:
        by_key.setdefault((row.objective, row.select, row.candidate), {})[row.seed] = row
    table = []
    for (objective, select, name), of_seed in by_key.items():
        base = by_key.get((objective, select, baseline), {})
        seeds = sorted(of_seed)
        best = [of_seed[s].best_accuracy for s in seeds]
        paired = [of_seed[s].best_accuracy - base[s].best_accuracy for s in seeds if s in base]
        base_epochs = statistics.fmean(base[s].epochs for s in seeds if s in base) if base else 0
        epochs = statistics.fmean(of_seed[s].epochs for s in seeds)
        mean_best, sd_best = mean_sd(best)
        mean_diff, sd_diff = mean_sd(paired)
        table.append(
            {
                "objective": objective,
                "select": select,
                "candidate": name,
                "seeds": len(seeds),
                "best_acc": mean_best,
                "best_acc_sd": sd_best,
                "best_acc_p10": percentile(best, 0.1),
                "vs_baseline": mean_diff,
                "vs_baseline_se": sd_diff / len(paired) ** 0.5 if paired else float("nan"),
                "max_final_acc": mean_sd([of_seed[s].max_final_accuracy for s in seeds])[0],
                "epochs": epochs,
                "cost_vs_baseline": epochs / base_epochs if base_epochs else float("nan"),
                "pruned": statistics.fmean(of_seed[s].pruned for s in seeds),
                "report_run_best": statistics.fmean(of_seed[s].best_is_report_run for s in seeds),
                "region_trained": statistics.fmean(of_seed[s].region_trained for s in seeds),
                "best_in_region": statistics.fmean(of_seed[s].best_in_region for s in seeds),
            }
        )
    return table


def markdown(table: list[dict], recording: Recording, title: str) -> str:
    meta = recording.meta
    lines = [
        f"# {title}",
        "",
        f"Recording: {meta.get('data')} ({meta.get('train_images')} training, "
        + (f"{meta['val_images']} validation, " if "val_images" in meta else "")
        + f"{meta.get('test_images')} test images) at {meta.get('image_size')} px, "
        f"{meta.get('device')}, {meta.get('precision')}, {meta.get('max_epochs')} epochs, "
        f"training seeds {recording.seeds()}, recorded {meta.get('started')}. "
        f"Replayed {datetime.date.today().isoformat()}.",
        "",
        "best acc: test accuracy of the trial the study calls best (by its objective), mean ± sd "
        "over sampler seeds, and its 10th percentile; Δ today: paired mean difference to "
        "`today` ± its standard error; max final: the best final accuracy of any finished "
        "trial; epochs: trained per study (cost), and as a ratio of today's; region: how often "
        f"a trial of the best region (configurations within {100 * REGION_WITHIN:g} points of "
        "the recording's best) ran at least half the epochs, and how often the best trial is "
        "one of them; report best: how often a report run is the best trial.",
        "",
        "| objective | candidate | best acc % | p10 % | Δ today (pts) | max final % | epochs "
        "| cost | pruned | region ran | best in region | report best |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        # A study that selected on the validation part says so after its objective.
        objective = r["objective"] + (" (on val)" if r["select"] == "val" else "")
        lines.append(
            f"| {objective} | {r['candidate']} | {100 * r['best_acc']:.1f} ± "
            f"{100 * r['best_acc_sd']:.1f} | {100 * r['best_acc_p10']:.1f} | "
            f"{100 * r['vs_baseline']:+.1f} ± {100 * r['vs_baseline_se']:.1f} | "
            f"{100 * r['max_final_acc']:.1f} | {r['epochs']:.0f} | {r['cost_vs_baseline']:.2f} | "
            f"{r['pruned']:.1f} | {100 * r['region_trained']:.0f} % | "
            f"{100 * r['best_in_region']:.0f} % | {100 * r['report_run_best']:.0f} % |"
        )
    return "\n".join(lines) + "\n"


def write_csv(rows: list[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(Row.__dataclass_fields__))
        writer.writeheader()
        for row in rows:
            writer.writerow(row.__dict__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recording", type=Path)
    parser.add_argument("--candidates", nargs="+", default=list(DEFAULT_CANDIDATES))
    parser.add_argument("--seeds", type=int, default=100, help="sampler seeds 0..N-1")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--objectives", nargs="+", choices=OBJECTIVES, default=["loss"])
    parser.add_argument("--signal", choices=SIGNALS, default="loss")
    parser.add_argument(
        "--select",
        nargs="+",
        choices=SELECTIONS,
        default=["test"],
        help="select on the test set (today's way) and/or the recording's validation part",
    )
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--partial", action="store_true", help=PARTIAL_HELP)
    parser.add_argument("--max-epochs", type=int)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="writes OUT.csv and OUT.md")
    args = parser.parse_args(argv)
    recording = load_recording(args.recording)
    rows = run_comparison(
        args.recording,
        args.candidates,
        seeds=range(args.first_seed, args.first_seed + args.seeds),
        objectives=args.objectives,
        signal=args.signal,
        trials=args.trials,
        max_epochs=args.max_epochs,
        jobs=args.jobs,
        selects=args.select,
        partial=args.partial,
    )
    write_csv(rows, args.out.with_suffix(".csv"))
    title = f"Replayed studies on {args.recording.name}"
    title += f" ({args.trials} trials, signal {args.signal})"
    if args.partial:
        title += (
            f" — PARTIAL: {len(recording.runs)} runs recorded so far; trials of configurations "
            "not recorded yet failed"
        )
    text = markdown(summarise(rows, args.candidates[0]), recording, title)
    if recording.has_validation:
        text += "\n" + bias_markdown(bias_table(rows), recording, rows)
    args.out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
