"""Check the replay against real studies: the same settings, trained for real and replayed.

    python -m benchmarks.search.real benchmarks/search/recordings/dev-2000-128px.json \
        sqlite:///storage/real/today-0.db --candidate today --replays 200 \
        --out benchmarks/search/results/real-vs-replay-dev-2000

A real study is one `catdog-study optimize` run on the recording's data, image size and
precision (its --seed is read from its trials: trial n trained with seed + n). It is read into
the replay's terms (each trial's lr snapped to the recording's grid, epochs run, final test
accuracy) and set beside (1) the replay of the same --seed, trial by trial, and (2) the spread
of `--replays` replayed studies of other seeds.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

import optuna
from optuna.trial import TrialState

from benchmarks.search.candidates import candidate
from benchmarks.search.compare import Row, best_region
from benchmarks.search.recording import Recording, load_recording
from benchmarks.search.replay import StudyOutcome, TrialOutcome, replay_study
from study.attrs import CONFIG_ATTR, PAPER_RUN_ATTR, SEARCH_SPACE_ATTR, SEED_ATTR

STATES = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}


def read_real_study(
    storage: str, recording: Recording, name: str = "catdog", objective: str = "loss"
) -> tuple[StudyOutcome, int]:
    """A finished real study as a StudyOutcome (its --seed: trial 0's training seed), and its
    --max-epochs."""
    study = optuna.load_study(study_name=name, storage=storage)
    trials = []
    for trial in study.get_trials(deepcopy=False):
        if trial.state not in STATES or CONFIG_ATTR not in trial.user_attrs:
            continue
        config = trial.user_attrs[CONFIG_ATTR]
        losses = trial.user_attrs.get("epoch_test_loss", [])
        accuracies = trial.user_attrs.get("epoch_test_accuracy", [])
        diverged = trial.state == TrialState.FAIL
        trials.append(
            TrialOutcome(
                number=trial.number,
                state=STATES[trial.state],
                optimizer=config["optimizer"],
                lr=config["lr"],
                grid_lr=recording.snap_lr(config["optimizer"], config["shuffle"], config["lr"]),
                shuffle=config["shuffle"],
                epochs=config["epochs"],
                epochs_run=len(losses) + diverged,  # a diverged epoch was trained too
                recorded_seed=trial.user_attrs.get(SEED_ATTR, -1),
                test_loss=losses[-1] if losses else math.nan,
                test_accuracy=accuracies[-1] if accuracies else math.nan,
                seconds=sum(trial.user_attrs.get("epoch_seconds", [])),
                paper_run=trial.user_attrs.get(PAPER_RUN_ATTR),
            )
        )
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    first = min(study.trials, key=lambda t: t.number)
    seed = int(first.user_attrs.get(SEED_ATTR, 0)) - first.number
    best = study.best_trial.number if complete else None
    outcome = StudyOutcome("real", seed, objective, "loss", best, trials)
    return outcome, _max_epochs(study, recording)


def _max_epochs(study: optuna.Study, recording: Recording) -> int:
    """The top of the study's epochs dimension (its --max-epochs)."""
    dimensions = study.user_attrs.get(SEARCH_SPACE_ATTR, {}).get("dimensions", [])
    for dimension in dimensions:
        if dimension.get("name") == "epochs" and "high" in dimension:
            return int(dimension["high"])
    return recording.max_epochs


def replay_like(recording: Recording, real: StudyOutcome, max_epochs: int, name: str, seed: int):
    """The replay of `name` with the real study's number of trials and --max-epochs."""
    search = candidate(name)
    return replay_study(
        recording, search, seed=seed, trials=len(real.trials), max_epochs=max_epochs
    )


def comparison(
    recording: Recording, real: list[tuple[StudyOutcome, int]], name: str, replays: int
) -> str:
    """Markdown: each real study beside its same-seed replay, then both beside many replays."""
    region = best_region(recording)
    max_epochs = real[0][1]
    trials = len(real[0][0].trials)
    lines = [
        "| study | seed | best acc % | max final % | epochs | pruned | failed | best trial "
        "| region ran | best in region |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def line(label: str, outcome: StudyOutcome) -> str:
        row = Row.of(outcome, region, max_epochs)
        best = outcome.best
        what = "-"
        if best:
            shuffle = "on" if best.shuffle else "off"
            what = f"{best.number}: {best.optimizer} {best.lr:.3g} {shuffle} {best.epochs} ep"
        return (
            f"| {label} | {outcome.seed} | {100 * row.best_accuracy:.1f} | "
            f"{100 * row.max_final_accuracy:.1f} | {row.epochs} | {row.pruned} | {row.failed} | "
            f"{what} | {'yes' if row.region_trained else 'no'} | "
            f"{'yes' if row.best_in_region else 'no'} |"
        )

    for outcome, epochs in real:
        lines.append(line("real", outcome))
        same = replay_like(recording, outcome, epochs, name, outcome.seed)
        lines.append(line(f"replay `{name}`", same))
    many = [
        Row.of(replay_like(recording, real[0][0], max_epochs, name, seed), region, max_epochs)
        for seed in range(replays)
    ]
    lines += [
        "",
        f"{replays} replayed studies of `{name}`, {trials} trials (seeds 0..{replays - 1}):",
        "",
    ]
    for field in ("best_accuracy", "max_final_accuracy", "epochs", "pruned"):
        values = sorted(getattr(r, field) for r in many)
        scale = 100 if "accuracy" in field else 1
        quantiles = [values[int(q * (len(values) - 1))] * scale for q in (0.1, 0.5, 0.9)]
        real_values = [getattr(Row.of(o, region, e), field) * scale for o, e in real]
        lines.append(
            f"- {field}: mean {statistics.fmean(values) * scale:.1f}, 10/50/90 % "
            f"{quantiles[0]:.1f} / {quantiles[1]:.1f} / {quantiles[2]:.1f}; "
            f"real: {', '.join(f'{v:.1f}' for v in real_values)}"
        )
    return "\n".join(lines) + "\n"


def trial_table(real: StudyOutcome, replay: StudyOutcome) -> str:
    """Trial by trial: what the real study and its same-seed replay did."""
    lines = [
        "| # | real: opt lr shuffle epochs | real: state, epochs run, acc % | "
        "replay: opt grid-lr shuffle epochs | replay: state, epochs run, acc % |",
        "|---|---|---|---|---|",
    ]
    by_number = {t.number: t for t in replay.trials}
    for t in real.trials:
        r = by_number.get(t.number)
        left = f"{t.optimizer} {t.lr:.3g} {'on' if t.shuffle else 'off'} {t.epochs}"
        right = (
            f"{r.optimizer} {r.grid_lr:.3g} {'on' if r.shuffle else 'off'} {r.epochs}"
            if r
            else "-"
        )
        lines.append(
            f"| {t.number} | {left} | {t.state}, {t.epochs_run}, {100 * t.test_accuracy:.1f} | "
            f"{right} | "
            + (f"{r.state}, {r.epochs_run}, {100 * r.test_accuracy:.1f} |" if r else "- |")
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recording", type=Path)
    parser.add_argument("storages", nargs="+", help="storage URLs of finished real studies")
    parser.add_argument("--study-name", default="catdog")
    parser.add_argument("--candidate", default="today", help="the settings the real studies ran")
    parser.add_argument("--replays", type=int, default=200)
    parser.add_argument("--out", type=Path, help="also write OUT.md")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    recording = load_recording(args.recording)
    real = [read_real_study(url, recording, args.study_name) for url in args.storages]
    text = comparison(recording, real, args.candidate, args.replays)
    for outcome, max_epochs in real:
        same = replay_like(recording, outcome, max_epochs, args.candidate, outcome.seed)
        text += f"\nReal study of seed {outcome.seed} and its replay, trial by trial:\n\n"
        text += trial_table(outcome, same)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
