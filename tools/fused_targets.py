"""Check issues 13 and 20's targets on a GPU, in one run: the probe, then 40-trial studies.

On a report-sized set of real photos (8 000 + 2 000; `tools/webp_copy.py` makes a copy of
`dogs-cats-dev` small enough to take to a GPU machine together with the wheels), at 256 px in
the study's precision, each step with a time limit inside --budget (one that no longer fits is
skipped, one that overruns is stopped and what it finished is still read back):

  probe   tools/fused_probe.py on random images (its own --budget): aggregate fused training
          by K against one trial alone, grouped/split per block, ReLU order, autotuning per
          width, NaN isolation, top kernels, torch.compile
  decode  `catdog-study data check`: decoding the set into the cache (the cores at work)
  fused   `catdog-study optimize --trials 40 --fuse auto -v` through tools/fixed_costs.py:
          wall time, start-up to the first epoch (--fuse auto's measuring in it), time per
          trial outside its epochs, and what --fuse auto measured (the study's "fuse" attr)
  alone   `optimize --trials 4 --fuse 1`: the report's four configurations one at a time

and compares the report's four configurations (queued first in both studies, never pruned)
between the two. Targets: fused study <= 90 s, start-up <= 10 s, <= 0.15 s per trial outside
its epochs, aggregate fused training >= 4x one trial alone (probe), the report's four
configurations within 2 points of unfused.

The dry run checks it on a CPU, in a few minutes, on a small SYNTHETIC set it writes (or
--data): the probe in its tiny mode, and the study with `--fuse 2` (auto is 1 on a CPU) through
fixed_costs.py --background-thread --grouped, so that a fused group of 2 really trains, its
convolutions grouped and its bookkeeping on the background thread, as on a GPU.

Run through tools/gpu_check.sh's set-up (it makes Optuna importable from .whl/), e.g.

    GPU_CHECK=tools/fused_targets.py tools/gpu_check.sh --data storage/gpu-data/dogs-cats-dev-webp
    .venv/bin/python tools/fused_targets.py --device cpu --mode dry-run --out /tmp/t

Results, 5 of the 8 files a device run returns: OUT/fused_targets.json, OUT/fused_targets-
details.tar.gz (logs, costs-*.json), and the probe's OUT/fused_probe.json, kernels.txt and
compile.log; each rewritten after every step.
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
from outputs import details_folder, pack  # noqa: E402

from study.attrs import PAPER_RUN_ATTR, STUDY_FUSE_ATTR, TEST_ACCURACY_ATTR  # noqa: E402

TOOLS = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Plan:
    image_size: int
    trials: int
    max_epochs: int
    fuse: str  # --fuse of the fused study
    probe_budget_s: float
    decode_limit_s: float
    fused_limit_s: float
    alone_limit_s: float


PLANS = {
    # About 8 minutes with the wheels' installation: one device call.
    "full": Plan(256, 40, 20, "auto", 180, 45, 165, 70),
    # Checks the script and the GPU's code path on any machine, CPU included.
    "dry-run": Plan(64, 5, 2, "2", 150, 60, 150, 150),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a set in the Kaggle layout (dry run: optional)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    parser.add_argument("--work", type=Path, default=Path("/tmp/catdog-fused-targets"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--mode", choices=sorted(PLANS), default="full")
    parser.add_argument("--budget", type=float, default=460, help="seconds for all steps")
    args = parser.parse_args()
    plan = PLANS[args.mode]
    budget = Budget(args.budget)
    args.out = args.out.resolve()  # the steps run in the work folder
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    args.details = details_folder(args.work)
    data = _data(args, parser)
    report: dict = {"environment": environment(args.device), "mode": args.mode}
    report["plan"] = asdict(plan)
    report["data"] = str(data)

    def save() -> None:
        report["targets"] = targets(report, args.out / "fused_probe.json")
        report["seconds_total"] = round(args.budget - budget.left(), 1)
        (args.out / "fused_targets.json").write_text(json.dumps(report, indent=2) + "\n")
        pack(args.details, args.out / "fused_targets-details.tar.gz")

    probe = ["--out", str(args.out), "--device", args.device]
    probe += ["--budget", str(min(plan.probe_budget_s, budget.left() - 10))]
    probe += ["--tiny"] if args.mode == "dry-run" else []
    runner = [str(TOOLS / "fused_probe.py")]
    # The probe keeps its own budget; its watchdog ends it 15 s past that at the latest.
    report["probe"] = run_step("probe", probe, args, budget, plan.probe_budget_s + 20, runner)
    save()
    size = ["--image-size", str(plan.image_size)]
    check = ["data", "check", str(data), *size]
    report["decode"] = run_step("decode", check, args, budget, plan.decode_limit_s)
    save()
    common = ["--data", str(data), *size, "--device", args.device]
    common += ["--max-epochs", str(plan.max_epochs)]
    fused = [*common, "-v", "--trials", str(plan.trials), "--fuse", plan.fuse]
    gpu_path = ("--background-thread", "--grouped") if args.mode == "dry-run" else ()
    report["fused"] = study("fused", fused, args, budget, plan.fused_limit_s, gpu_path)
    save()
    alone = [*common, "-q", "--trials", "4", "--fuse", "1"]  # the report's four, queued first
    report["alone"] = study("alone", alone, args, budget, plan.alone_limit_s)
    save()
    print(json.dumps(report["targets"], indent=2))


def _data(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Path:
    """--data, or for a dry run without it a small SYNTHETIC set written in the work folder."""
    if args.data is not None:
        return args.data.resolve()
    if args.mode != "dry-run":
        parser.error("--data is needed (a set in the Kaggle layout)")
    from catdog.synthetic import SyntheticSpec, write_synthetic_dataset

    data = args.work / "synthetic-dry-run"
    if not data.exists():
        write_synthetic_dataset(data, SyntheticSpec(train_per_class=64, test_per_class=16))
    return data


def study(
    name: str,
    options: list[str],
    args: argparse.Namespace,
    budget: Budget,
    limit: float,
    costs_options: tuple[str, ...] = (),
) -> dict:
    """One optimize run through fixed_costs.py on its own storage; its costs and results."""
    storage = f"sqlite:///{args.work / name}.db"
    for leftover in args.work.glob(f"{name}.db*"):
        leftover.unlink()
    options = [*options, "--storage", storage, "--artifact-dir", str(args.work / f"art-{name}")]
    costs = args.details / f"costs-{name}.json"
    runner = [str(TOOLS / "fixed_costs.py"), *costs_options, "--out", str(costs), "--"]
    started = time.monotonic()
    result = run_step(name, options, args, budget, limit, runner)
    result["seconds_with_measuring"] = round(time.monotonic() - started, 1)
    if costs.exists():
        result["costs"] = json.loads(costs.read_text())
    try:
        loaded = optuna.load_study(study_name="catdog", storage=storage)
    except KeyError:
        return result
    trials = loaded.get_trials()
    states: dict[str, int] = {}
    for trial in trials:
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
    accuracies = [t.user_attrs.get(TEST_ACCURACY_ATTR) for t in trials if t.value is not None]
    result["trials_by_state"] = states
    result["epochs_trained"] = sum(len(t.intermediate_values) for t in trials)
    result["best_test_accuracy"] = max((a for a in accuracies if a is not None), default=None)
    result["report_runs"] = {
        t.user_attrs[PAPER_RUN_ATTR]: t.user_attrs.get(TEST_ACCURACY_ATTR)
        for t in trials
        if PAPER_RUN_ATTR in t.user_attrs and t.state.name == "COMPLETE"
    }
    result["fuse"] = loaded.user_attrs.get(STUDY_FUSE_ATTR)  # what --fuse auto measured
    return result


def targets(report: dict, probe_json: Path) -> dict:
    """Each target with the measured figure and whether it is met."""
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
    if probe_json.exists():
        summary = json.loads(probe_json.read_text()).get("summary", {})
        if summary.get("best_over_alone") is not None:
            out["fused_training_over_alone"] = {
                "measured": summary["best_over_alone"],
                "images_per_second_by_K": {
                    k: row["images_per_second"] for k, row in summary["by_K"].items()
                },
                "alone_images_per_second": summary["alone_images_per_second"],
                "target": 4,
                "met": summary["target_4x_alone_met"],
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
