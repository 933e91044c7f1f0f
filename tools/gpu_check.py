"""Measure this project's training speed on a GPU machine and write the figures as JSON.

Run through tools/gpu_check.sh, which makes the project and its packages importable first; its
header says how to run it on any CUDA machine. Steps, most important first, each with its own
time limit inside an overall budget (a step that no longer fits is skipped, one that overruns is
stopped and what it finished is still read back):

  data     a SYNTHETIC set in the Kaggle layout (full: 8 000 training + 2 000 test images), its
           JPEGs as large as Kaggle's photos, so the classic pipeline decodes what it would there
  bench    `catdog-study bench` at the image size: classic vs project epoch vs bare step
  study    `catdog-study optimize --trials 40` on that set: wall time, trials, epochs, and
           through tools/fixed_costs.py, start-up and the time per trial outside its epochs
  jobs     the same short study with --jobs 1 and with --jobs N: trials and epochs per hour
  compile  `catdog-study bench --compile`

Everything goes to OUT/gpu_check.json, and the logs and each step's JSON to
OUT/gpu_check-details.tar.gz (both rewritten after every step): two files (tools/outputs.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import optuna
from child import run_with_deadline  # tools/child.py, beside this script
from machine import environment
from outputs import details_folder, pack

from catdog.synthetic import SyntheticSpec, write_synthetic_dataset


@dataclass(frozen=True)
class Plan:
    train_per_class: int
    test_per_class: int
    image_size: int
    bench_batches: int
    bench_repeats: int
    study_trials: int
    study_max_epochs: int
    jobs_trials: int
    jobs_max_epochs: int
    jobs: int  # compared against --jobs 1


PLANS = {
    # The size of the report's data set: 8 000 + 2 000 images at 256 px, and a 40-trial study.
    "full": Plan(4000, 1000, 256, 15, 3, 40, 20, 16, 4, 4),
    "quick": Plan(1000, 200, 256, 4, 2, 8, 3, 8, 2, 4),
    # Checks the script itself on any machine, CPU included, in a few minutes.
    "dry-run": Plan(40, 16, 64, 1, 1, 3, 1, 4, 1, 2),
}


class Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the JSON and logs")
    parser.add_argument("--work", type=Path, default=Path("/tmp/catdog-gpu-check"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--mode", choices=sorted(PLANS), default="full")
    parser.add_argument("--budget", type=float, default=520, help="seconds for all steps")
    args = parser.parse_args()
    plan = PLANS[args.mode]
    budget = Budget(args.budget)
    args.out.mkdir(parents=True, exist_ok=True)
    args.details = details_folder(args.work)
    report: dict = {"environment": environment(args.device), "mode": args.mode}
    report["plan"] = asdict(plan)

    def save() -> None:
        (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
        pack(args.details, args.out / "gpu_check-details.tar.gz")

    save()
    data = args.work / f"synthetic-photos-{plan.train_per_class}-{plan.test_per_class}"
    started = time.monotonic()
    if not data.exists():
        spec = SyntheticSpec(
            train_per_class=plan.train_per_class,
            test_per_class=plan.test_per_class,
            photo_sized=True,
        )
        write_synthetic_dataset(data, spec)
    report["data"] = {
        "what": "SYNTHETIC shapes (not cats and dogs), JPEG files with a long side of 300-500 px",
        "training_images": 2 * plan.train_per_class,
        "test_images": 2 * plan.test_per_class,
        "seconds_to_write": round(time.monotonic() - started, 1),
    }
    save()
    common = ["--data", str(data), "--image-size", str(plan.image_size), "--device", args.device]

    bench_json = args.details / "bench.json"
    bench = ["bench", *common, "--batches", str(plan.bench_batches)]
    bench += ["--repeats", str(plan.bench_repeats)]
    report["bench"] = run_step("bench", [*bench, "--json", str(bench_json)], args, budget, 240)
    if bench_json.exists():
        report["bench"]["figures"] = json.loads(bench_json.read_text())
    save()

    report["study"] = run_study(
        "study", common, plan.study_trials, plan.study_max_epochs, 1, [], args, budget, 330
    )
    save()

    fixed = ["--pruner", "none", "--no-seed-configs"]
    report["jobs"] = {}
    for jobs in (1, plan.jobs):
        report["jobs"][str(jobs)] = run_study(
            f"jobs{jobs}",
            common,
            plan.jobs_trials,
            plan.jobs_max_epochs,
            jobs,
            fixed,
            args,
            budget,
            120,
        )
        save()
    single, several = report["jobs"]["1"], report["jobs"][str(plan.jobs)]
    if single.get("trials_per_hour") and several.get("trials_per_hour"):
        report["jobs"]["trials_per_hour_ratio"] = round(
            several["trials_per_hour"] / single["trials_per_hour"], 2
        )
        report["jobs"]["epochs_per_hour_ratio"] = round(
            several["epochs_per_hour"] / single["epochs_per_hour"], 2
        )
    save()

    compile_json = args.details / "bench_compile.json"
    report["compile"] = run_step(
        "compile", [*bench, "--compile", "--json", str(compile_json)], args, budget, 200
    )
    if compile_json.exists():
        report["compile"]["figures"] = json.loads(compile_json.read_text())
    report["seconds_total"] = round(args.budget - budget.left(), 1)
    save()
    print(json.dumps(summary(report), indent=2))


def run_step(
    name: str,
    arguments: list[str],
    args,
    budget: Budget,
    limit: float,
    runner: list[str] | None = None,
) -> dict:
    """Run `python -m study ARGUMENTS` (or `python RUNNER... ARGUMENTS`) in the work folder;
    wall time, exit status, log."""
    allowed = min(limit, budget.left())
    if allowed < 20:
        return {"skipped": f"{budget.left():.0f} s of the budget left"}
    log_path = args.details / f"{name}.log"
    command = [sys.executable, *(runner or ["-m", "study"]), *arguments]
    with open(log_path, "w") as log:
        log.write(" ".join(command) + "\n")
        log.flush()
        # SIGTERM first: its --jobs workers queue their trials and stop.
        status, seconds = run_with_deadline(command, log, allowed, cwd=args.work, grace_s=30)
    result = {"command": " ".join(arguments), "seconds": round(seconds, 1), "exit_status": status}
    if status is None:
        result["timed_out_after_s"] = round(allowed)
    tail = log_path.read_text().splitlines()[-15:]
    result["log_tail"] = tail
    print(f"{name}: exit {status} after {seconds:.0f} s", flush=True)
    return result


def run_study(
    name: str,
    common: list[str],
    trials: int,
    max_epochs: int,
    jobs: int,
    extra: list[str],
    args,
    budget: Budget,
    limit: float,
) -> dict:
    """An optimize run on its own storage; wall time and what the storage holds afterwards."""
    storage = f"sqlite:///{args.work / name}.db"
    for leftover in args.work.glob(f"{name}.db*"):
        leftover.unlink()
    arguments = [
        "optimize",
        *common,
        "--trials",
        str(trials),
        "--max-epochs",
        str(max_epochs),
        "--jobs",
        str(jobs),
        "--storage",
        storage,
        "--study-name",
        name,
        "--artifact-dir",
        str(args.work / f"artifacts-{name}"),
        *extra,
    ]
    # Through tools/fixed_costs.py: where the time outside the epochs goes, too.
    costs = args.details / f"costs-{name}.json"
    runner = [str(Path(__file__).with_name("fixed_costs.py")), "--out", str(costs), "--"]
    result = run_step(name, arguments[1:], args, budget, limit, runner)
    if costs.exists():
        result["costs"] = json.loads(costs.read_text())
    if "skipped" in result:
        return result
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return result
    states: dict[str, int] = {}
    epochs = 0
    for trial in study.get_trials(deepcopy=False):
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
        epochs += len(trial.intermediate_values)
    finished = states.get("COMPLETE", 0) + states.get("PRUNED", 0)
    hours = result["seconds"] / 3600
    result.update(
        jobs=jobs,
        trials_by_state=states,
        epochs_trained=epochs,
        trials_per_hour=round(finished / hours, 1),
        epochs_per_hour=round(epochs / hours, 1),
    )
    if states.get("COMPLETE"):
        result["best_value"] = study.best_value
        result["precision"] = study.best_trial.user_attrs.get("precision")
    return result


def summary(report: dict) -> dict:
    """The headline figures only, for the end of the log."""
    figures = report.get("bench", {}).get("figures", {})
    out = {"gpu": report["environment"]["gpu"], "device": report["environment"]["device"]}
    for phase in ("train", "eval"):
        if phase in figures:
            out[f"bench_{phase}"] = {
                key: figures[phase][key]
                for key in ("images_per_second", "project_over_classic", "project_over_bare")
            }
    study = report.get("study", {})
    out["study_seconds"] = study.get("seconds")
    costs = study.get("costs", {})
    out["study_start_up_s"] = costs.get("start_up", {}).get("to_first_epoch_s")
    out["study_outside_per_trial_s"] = costs.get("outside", {}).get("per_trial_s")
    out["study_trials"] = study.get("trials_by_state")
    out["jobs_trials_per_hour_ratio"] = report.get("jobs", {}).get("trials_per_hour_ratio")
    return out


if __name__ == "__main__":
    main()
