"""Measure fused training on a GPU: `bench --fuse K` for K = 1, 2, 4, 8, 16, 32.

Each K is one run of catdog.bench in its own process (so that an out-of-memory K does not end
the others, and each starts with an empty GPU): the classic pipeline, one trial's project epoch
and bare step, and K trials trained as one fused network, on the same images, at 256 px in bf16.
The figure to look at: aggregate fused training against the one-trial bare step
(fused_over_bare; fusing pays off where it is well above 1, and K = 4 ... 32 show where it stops
growing).

Needs only torch and this repository (catdog never imports optuna). On any CUDA machine, from
the project root (OUT: a folder for the results):

    python3 tools/fused_check.py --out "$OUT"                 # about 4-6 minutes on an H200

Anywhere, to check the script itself (about a minute on 2 cores):

    .venv/bin/python tools/fused_check.py --device cpu --mode dry-run --out /tmp/fused-check

Results: OUT/fused_check.json (environment, per-K figures, a summary table) and
OUT/fused_check-details.tar.gz (each run's full figures, bench-K.json, and its log, K.log), both
rewritten after every K: two files (tools/outputs.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from child import run_with_deadline  # tools/child.py, beside this script
from machine import environment
from outputs import details_folder, pack

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Plan:
    members: tuple[int, ...]
    image_size: int
    precision: str
    batches: int  # training batches of 128 per timed pass
    repeats: int
    train_per_class: int
    test_per_class: int
    seconds_per_run: float  # a K that takes longer is stopped (and reported as such)


PLANS = {
    "full": Plan((1, 2, 4, 8, 16, 32), 256, "bf16", 4, 3, 512, 256, 150),
    # Checks the script itself on any machine, CPU included.
    "dry-run": Plan((1, 2), 64, "fp32", 1, 1, 64, 32, 120),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the JSON and logs")
    parser.add_argument("--work", type=Path, default=Path("/tmp/catdog-fused-check"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--mode", choices=sorted(PLANS), default="full")
    parser.add_argument("--budget", type=float, default=500, help="seconds for all runs")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: a single K
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # run from anywhere, the project not installed
    plan = PLANS[args.mode]
    if args.one is not None:
        bench_one(args, plan, args.one)
        return
    deadline = time.monotonic() + args.budget
    args.out.mkdir(parents=True, exist_ok=True)
    details = details_folder(args.work)
    report: dict = {"environment": environment(args.device), "mode": args.mode}
    report["plan"] = asdict(plan)
    report["runs"] = {}

    def save() -> None:
        report["summary"] = summary(report["runs"])
        (args.out / "fused_check.json").write_text(json.dumps(report, indent=2) + "\n")
        pack(details, args.out / "fused_check-details.tar.gz")

    save()
    started = time.monotonic()
    write_data(args.work, plan)
    report["data"] = {
        "what": "SYNTHETIC shapes (not cats and dogs), small JPEGs",
        "training_images": 2 * plan.train_per_class,
        "test_images": 2 * plan.test_per_class,
        "seconds_to_write": round(time.monotonic() - started, 1),
    }
    save()
    for members in plan.members:
        allowed = min(plan.seconds_per_run, deadline - time.monotonic())
        if allowed < 30:
            report["runs"][str(members)] = {"skipped": "out of the time budget"}
        else:
            report["runs"][str(members)] = run_one(args, members, allowed)
        save()
    print(json.dumps(report["summary"], indent=2))


def write_data(work: Path, plan: Plan) -> Path:
    from catdog.synthetic import SyntheticSpec, write_synthetic_dataset

    data = work / f"synthetic-{plan.train_per_class}-{plan.test_per_class}"
    if not data.exists():
        spec = SyntheticSpec(
            train_per_class=plan.train_per_class, test_per_class=plan.test_per_class
        )
        write_synthetic_dataset(data, spec)
    return data


def run_one(args: argparse.Namespace, members: int, allowed: float) -> dict:
    """This script with --one K in its own process and session; exit status, time, figures."""
    log_path = details_folder(args.work, fresh=False) / f"{members}.log"
    command = [sys.executable, __file__, "--one", str(members), "--out", str(args.out)]
    command += ["--work", str(args.work), "--device", args.device, "--mode", args.mode]
    with open(log_path, "w") as log:
        status, seconds = run_with_deadline(command, log, allowed, cwd=ROOT)
    result: dict = {"seconds": round(seconds, 1), "exit_status": status}
    if status is None:
        result["timed_out_after_s"] = round(allowed)
    figures = log_path.with_name(f"bench-{members}.json")
    if status == 0 and figures.exists():
        result["figures"] = json.loads(figures.read_text())
    else:
        result["log_tail"] = log_path.read_text().splitlines()[-15:]
    print(f"K={members}: exit {status} after {result['seconds']:.0f} s", flush=True)
    return result


def bench_one(args: argparse.Namespace, plan: Plan, members: int) -> None:
    from catdog.bench import run_bench
    from catdog.bench_result import BenchSettings, format_result
    from catdog.device import configure, resolve_device

    device = resolve_device(args.device)
    configure(device)
    settings = BenchSettings(
        image_size=plan.image_size,
        batches=plan.batches,
        repeats=plan.repeats,
        precision=plan.precision,
        fuse=members,
    )
    data = write_data(args.work, plan)
    result = run_bench(data, "SYNTHETIC", device, settings, cache_dir=args.work / "cache")
    print(format_result(result), flush=True)
    figures = details_folder(args.work, fresh=False) / f"bench-{members}.json"
    figures.write_text(json.dumps(result.to_dict(), indent=2))


def summary(runs: dict) -> list[dict]:
    """One row per K: aggregate images/s and its ratios to one trial's bare step and epoch."""
    rows = []
    for members, run in runs.items():
        row: dict = {"K": int(members)}
        figures = run.get("figures")
        if figures is None:
            row["failed"] = run.get("skipped") or f"exit {run.get('exit_status')}"
        else:
            train, evaluation = figures["train"], figures["eval"]
            row |= {
                "train_fused_img_s": train["images_per_second"]["fused"],
                "train_bare_img_s": train["images_per_second"]["bare"],
                "train_project_img_s": train["images_per_second"]["project"],
                "train_fused_over_bare": train["fused_over_bare"],
                "train_fused_over_project": train["fused_over_project"],
                "eval_fused_img_s": evaluation["images_per_second"]["fused"],
                "eval_fused_over_project": evaluation["fused_over_project"],
                "target_train_fused_over_bare_4x": train["fused_over_bare"] >= 4,
            }
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
