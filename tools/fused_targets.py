"""Check issue 13's study targets on a GPU: 40-trial default studies, fused and not.

On a report-sized set of real photos (8 000 + 2 000; `tools/webp_copy.py` makes a copy of
`dogs-cats-dev` small enough to take to a GPU machine), at 256 px in the study's precision:

  decode  `catdog-study data check`: decoding the new set into the cache (the cores at work)
  fused   `catdog-study optimize --trials 40` (`--fuse auto`), through tools/fixed_costs.py:
          wall time, start-up to the first epoch, time per trial outside its epochs
  bench   `catdog-study bench --fuse K` for the K the study chose: aggregate fused training
          against one trial's bare step, on the same images
  alone   `optimize --trials 4 --fuse 1`: the report's four configurations one at a time

and compares the report's four configurations (queued first in both studies, never pruned)
between the two. Targets (issue 13): fused study <= 90 s, start-up <= 10 s, <= 0.15 s per trial
outside its epochs, aggregate fused training >= 4x the bare step, the report's four
configurations within 2 points of unfused.

Run through tools/gpu_check.sh's set-up (it makes Optuna importable from .whl/), e.g.

    GPU_CHECK=tools/fused_targets.py tools/gpu_check.sh --data /tmp/dogs-cats-dev-webp

or, where the project's packages are installed, directly:

    python3 tools/fused_targets.py --data DIR --out "$OUT"                 # about 6 minutes
    .venv/bin/python tools/fused_targets.py --data DIR --device cpu --mode dry-run --out /tmp/t

Results: OUT/fused_targets.json (rewritten after every step), OUT/costs-*.json, OUT/logs/.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the project, not installed

import optuna  # noqa: E402
from gpu_check import Budget, run_step  # noqa: E402 - tools/gpu_check.py, beside this script
from machine import environment  # noqa: E402

from study.attrs import PAPER_RUN_ATTR, TEST_ACCURACY_ATTR  # noqa: E402


@dataclass(frozen=True)
class Plan:
    image_size: int
    trials: int
    max_epochs: int
    fused_limit_s: float
    bench_batches: int
    alone_limit_s: float


PLANS = {
    "full": Plan(256, 40, 20, 240, 8, 150),
    # Checks the script itself on any machine, CPU included, in a few minutes.
    "dry-run": Plan(64, 5, 2, 150, 1, 150),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a set in the Kaggle layout")
    parser.add_argument("--out", type=Path, required=True, help="folder for the JSON and logs")
    parser.add_argument("--work", type=Path, default=Path("/tmp/catdog-fused-targets"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--mode", choices=sorted(PLANS), default="full")
    parser.add_argument("--budget", type=float, default=560, help="seconds for all steps")
    args = parser.parse_args()
    plan = PLANS[args.mode]
    budget = Budget(args.budget)
    (args.out / "logs").mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    data = args.data.resolve()
    report: dict = {"environment": environment(args.device), "mode": args.mode}
    report["plan"] = asdict(plan)
    report["data"] = str(data)

    def save() -> None:
        report["targets"] = targets(report)
        (args.out / "fused_targets.json").write_text(json.dumps(report, indent=2) + "\n")

    size = ["--image-size", str(plan.image_size)]
    report["decode"] = run_step("decode", ["data", "check", str(data), *size], args, budget, 120)
    save()
    common = ["--data", str(data), *size, "--device", args.device]
    common += ["--max-epochs", str(plan.max_epochs), "-q"]
    fused = ["--trials", str(plan.trials), "--fuse", "auto"]
    report["fused"] = study("fused", [*common, *fused], args, budget, plan.fused_limit_s)
    save()
    slots = max(report["fused"].get("fused_slots") or [15]) + 1
    bench_json = args.out / "bench-fused.json"
    bench = ["bench", "--data", str(data), *size, "--device", args.device, "--fuse", str(slots)]
    bench += ["--batches", str(plan.bench_batches), "--repeats", "3", "--json", str(bench_json)]
    report["bench"] = run_step("bench", bench, args, budget, 150)
    if bench_json.exists():
        report["bench"]["figures"] = json.loads(bench_json.read_text())
    save()
    alone = ["--trials", "4", "--fuse", "1"]  # the report's four, queued first
    report["alone"] = study("alone", [*common, *alone], args, budget, plan.alone_limit_s)
    save()
    print(json.dumps(report["targets"], indent=2))


def study(name: str, options: list[str], args, budget: Budget, limit: float) -> dict:
    """One optimize run through fixed_costs.py on its own storage; its costs and results."""
    storage = f"sqlite:///{args.work / name}.db"
    for leftover in args.work.glob(f"{name}.db*"):
        leftover.unlink()
    options = [*options, "--storage", storage, "--artifact-dir", str(args.work / f"art-{name}")]
    costs = args.out / f"costs-{name}.json"
    runner = [str(Path(__file__).with_name("fixed_costs.py")), "--out", str(costs), "--"]
    started = time.monotonic()
    result = run_step(name, options, args, budget, limit, runner)
    result["seconds_with_measuring"] = round(time.monotonic() - started, 1)
    if costs.exists():
        result["costs"] = json.loads(costs.read_text())
    try:
        trials = optuna.load_study(study_name="catdog", storage=storage).get_trials()
    except KeyError:
        return result
    states: dict[str, int] = {}
    for trial in trials:
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
    accuracies = [t.user_attrs.get(TEST_ACCURACY_ATTR) for t in trials if t.value is not None]
    result["trials_by_state"] = states
    result["best_test_accuracy"] = max((a for a in accuracies if a is not None), default=None)
    result["report_runs"] = {
        t.user_attrs[PAPER_RUN_ATTR]: t.user_attrs.get(TEST_ACCURACY_ATTR)
        for t in trials
        if PAPER_RUN_ATTR in t.user_attrs and t.state.name == "COMPLETE"
    }
    result["fused_slots"] = sorted(
        {t.user_attrs.get("worker", {}).get("slot", 0) for t in trials if t.user_attrs}
    )
    return result


def targets(report: dict) -> dict:
    """Issue 13's targets, each with the measured figure and whether it is met."""
    fused, alone = report.get("fused", {}), report.get("alone", {})
    costs = fused.get("costs", {})
    out: dict = {"gpu": report["environment"]["gpu"], "date": report["environment"]["date"]}
    if costs:
        wall = costs["wall_s"]
        start_up = costs["start_up"]["to_first_epoch_s"]
        outside = costs["outside"]["per_trial_s"]
        out["study_wall_s"] = {"measured": wall, "target": 90, "met": wall <= 90}
        out["start_up_s"] = {"measured": start_up, "target": 10, "met": start_up <= 10}
        out["outside_per_trial_s"] = {"measured": outside, "target": 0.15, "met": outside <= 0.15}
    train = report.get("bench", {}).get("figures", {}).get("train", {})
    if "fused_over_bare" in train:
        ratio = train["fused_over_bare"]
        out["fused_training_over_bare"] = {
            "measured": ratio,
            "images_per_second": train["images_per_second"],
            "target": 4,
            "met": ratio >= 4,
        }
    both = set(fused.get("report_runs", {})) & set(alone.get("report_runs", {}))
    if both:
        points = {
            label: round(100 * (fused["report_runs"][label] - alone["report_runs"][label]), 2)
            for label in sorted(both)
        }
        out["report_runs_fused_minus_alone_points"] = {
            "measured": points,
            "target": "within 2",
            "met": all(abs(p) <= 2 for p in points.values()),
        }
    return out


if __name__ == "__main__":
    main()
