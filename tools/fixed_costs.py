"""Where one `optimize` run's time goes outside its training epochs (issue 13, "fixed costs").

Runs `catdog-study optimize ARGS...` in this process, timing the functions that train and
evaluate (one trial's train_epoch/evaluate, a fused run's FusedTrainer.train_epoch/evaluate;
each returns only once the device is done) and what the training loop's thread does between
them. Writes, as JSON:

- start-up: from this script's start (Python and its own imports excluded, some 50 ms) to the
  first training step, split into the phases before it (imports, set-up, `--fuse auto`'s
  measuring, data, first trial); the epochs `--fuse auto` trains to measure count here, not
  as epochs;
- epochs: the time inside training and evaluation, and how many fused or single epochs;
- outside: the command's wall time minus start-up and epochs, in all and per trial (the
  issue's "time per trial outside its epochs"), with the main thread's share of it by step;
- background: the seconds the fused run's background thread was busy (off the critical path).

    .venv/bin/python tools/fixed_costs.py --out costs.json -- --data PATH --trials 24 --fuse 4

Everything after `--` goes to `optimize` as it is (give it its own --storage and
--artifact-dir folders; the run is a real study). On a CPU, `--background-thread --grouped`
run a fused study the way a GPU runs it where a CPU can: the bookkeeping on its thread and the
convolutions grouped (not bitwise those of separate runs then: a check of the code path).
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402 - timed from the line above
import json  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Clock:
    """Seconds spent inside wrapped functions, by label, per thread exclusive: time inside a
    wrapped function that another wrapped function calls counts for the inner one only."""

    def __init__(self, started: float) -> None:
        self.started = started  # perf_counter() when the run began
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.marks: dict[str, float] = {}  # label -> first entry, s after STARTED
        self.early: dict[str, float] = defaultdict(float)  # of seconds, before the first epoch
        self._stacks = threading.local()  # [label, entered or resumed at, opaque] per open call
        self._wrapped: list[tuple[object, str, object]] = []  # (owner, name, original)

    def wrap(
        self,
        owner: object,
        name: str,
        label: str,
        *,
        main_only: bool = True,
        opaque: bool = False,
    ) -> None:
        """Time owner.name under `label`; opaque: wrapped functions it calls count as its own
        time (`--fuse auto` trains epochs to measure: start-up, not epochs)."""
        inner = getattr(owner, name, None)
        if inner is None:  # an older version of the project, to compare with
            return
        self._wrapped.append((owner, name, owner.__dict__.get(name, inner)))

        def timed(*args, **kwargs):
            if main_only and threading.current_thread() is not threading.main_thread():
                return inner(*args, **kwargs)
            stack = self._stack()
            if stack and stack[-1][2]:  # inside an opaque call: its time
                return inner(*args, **kwargs)
            now = time.perf_counter()
            if stack:  # the outer call pauses
                outer = stack[-1]
                self._charge(outer[0], now - outer[1])
            self.marks.setdefault(label, now - self.started)
            stack.append([label, now, opaque])
            try:
                return inner(*args, **kwargs)
            finally:
                now = time.perf_counter()
                self._charge(label, now - stack.pop()[1])
                self.calls[label] += 1
                if stack:
                    stack[-1][1] = now  # the outer call goes on

        setattr(owner, name, timed)

    def restore(self) -> None:
        """Put back every function wrap() replaced."""
        for owner, name, original in reversed(self._wrapped):
            setattr(owner, name, original)
        self._wrapped.clear()

    def _charge(self, label: str, seconds: float) -> None:
        self.seconds[label] += seconds
        if "epoch: train" not in self.marks:
            self.early[label] += seconds

    def _stack(self) -> list:
        if not hasattr(self._stacks, "calls"):
            self._stacks.calls = []
        return self._stacks.calls


def instrument(clock: Clock) -> None:
    """Wrap the training, evaluation and bookkeeping functions."""
    import importlib

    import catdog.train as train
    import study.data.splits as splits
    import study.run.objective as objective
    import study.run.setup as setup
    import study.run.worker as worker
    from catdog.fused.trainer import FusedTrainer

    def first_of(*names: str):
        """The first module of `names` that imports: where this version keeps a function, then
        where an older one did (before 2026-12-03 fused.py held the fused loop and its members,
        objective.py the EpochReporter)."""
        for name in names[:-1]:
            try:
                return importlib.import_module(name)
            except ImportError:
                continue
        return importlib.import_module(names[-1])

    fused_loop = first_of("study.run.fused.loop", "study.run.fused")
    fused_members = first_of("study.run.fused.members", "study.run.fused")
    reporter = first_of("study.run.reporter", "study.run.objective")

    clock.wrap(train, "train_epoch", "epoch: train")
    clock.wrap(train, "evaluate", "epoch: evaluate")
    clock.wrap(FusedTrainer, "train_epoch", "epoch: train")
    clock.wrap(FusedTrainer, "evaluate", "epoch: evaluate")
    clock.wrap(setup, "set_up_run", "start-up: set-up (storage, study, precision)")
    clock.wrap(setup, "choose_width", "start-up: --fuse auto measuring", opaque=True)
    data = "start-up: data (scan, decode or cache, to device)"
    clock.wrap(splits, "load_splits", data)
    clock.wrap(worker, "load_splits", data)  # imported by name there
    clock.wrap(objective.Objective, "start", "trial: start (suggest, attrs)")
    clock.wrap(objective.Objective, "resume_point", "trial: start (suggest, attrs)")
    clock.wrap(reporter.EpochReporter, "__call__", "trial: after each epoch")
    clock.wrap(objective.Objective, "finish", "trial: end (model file, artifact)")
    clock.wrap(objective.Objective, "ending", "trial: end (curves PNG, note)")
    clock.wrap(fused_loop, "_start", "trial: start (suggest, attrs)")
    clock.wrap(fused_members, "_end", "trial: end (model file, artifact)")
    try:
        background = importlib.import_module("study.run.background")
    except ImportError:  # before the background thread
        return
    clock.wrap(background.Background, "_run", "background thread", main_only=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument(
        "--background-thread",
        action="store_true",
        help="do the fused run's bookkeeping on its background thread on a CPU too",
    )
    parser.add_argument(
        "--grouped",
        action="store_true",
        help="run fused convolutions grouped on a CPU too, as on a GPU",
    )
    parser.add_argument("optimize", nargs=argparse.REMAINDER, help="-- then optimize's options")
    args = parser.parse_args()
    options = [a for a in args.optimize if a != "--"]
    report = measure(
        options,
        started=STARTED,
        background_thread=args.background_thread,
        grouped=args.grouped,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def measure(
    options: list[str],
    *,
    started: float | None = None,
    background_thread: bool = False,
    grouped: bool = False,
) -> dict:
    """Run `optimize OPTIONS` here, timed; the report (see the module docstring). started:
    perf_counter() of the process's start (default: now)."""
    started = time.perf_counter() if started is None else started
    clock = Clock(started)
    imported = time.perf_counter()
    import torch  # noqa: F401 - its import is part of every run's start-up

    import catdog.fused.model
    import study.cli
    import study.run.background

    torch_imported = time.perf_counter()
    instrument(clock)
    saved = study.run.background.THREAD_DEVICES, catdog.fused.model.SPLIT_DEVICES
    if background_thread:
        study.run.background.THREAD_DEVICES = ("cuda", "cpu")
    if grouped:
        catdog.fused.model.SPLIT_DEVICES = ()
    import optuna
    from optuna.trial import TrialState

    code = 0
    try:
        study.cli.cli.main(["optimize", *options], standalone_mode=False)
    except SystemExit as exit_:
        code = exit_.code or 0
    finally:
        clock.restore()
        study.run.background.THREAD_DEVICES, catdog.fused.model.SPLIT_DEVICES = saved
    ended = time.perf_counter()
    wall = ended - started
    first_epoch = clock.marks.get("epoch: train", wall)
    epochs = clock.seconds["epoch: train"] + clock.seconds["epoch: evaluate"]
    storage = _option(options, "--storage", "sqlite:///storage/catdog.db")
    name = _option(options, "--study-name", "catdog")
    trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    states = defaultdict(int)
    for trial in trials:
        states[trial.state.name] += 1
    ended_here = sum(1 for t in trials if t.state != TrialState.WAITING)
    outside = wall - first_epoch - epochs
    asked = int(_option(options, "--trials", "40"))
    # After the first epoch began: what start-up's first trials did is in start_up.
    main_thread = {
        label: round(seconds - clock.early[label], 3)
        for label, seconds in sorted(clock.seconds.items())
        if label.startswith("trial:")
    }
    return {
        "command": ["catdog-study", "optimize", *options],
        "background_thread_on_cpu": background_thread,
        "grouped_on_cpu": grouped,
        "exit_code": code,
        "wall_s": round(wall, 2),
        "start_up": {
            "to_first_epoch_s": round(first_epoch, 2),
            "imports_s": round(torch_imported - imported + (imported - started), 2),
            "first_trials_s": round(
                sum(s for label, s in clock.early.items() if label.startswith("trial:")), 2
            ),
            **{
                label.removeprefix("start-up: ") + "_s": round(seconds, 2)
                for label, seconds in clock.seconds.items()
                if label.startswith("start-up:")
            },
        },
        "epochs": {
            "seconds": round(epochs, 2),
            "training_s": round(clock.seconds["epoch: train"], 2),
            "evaluation_s": round(clock.seconds["epoch: evaluate"], 2),
            "count": clock.calls["epoch: train"],
        },
        "outside": {
            "seconds": round(outside, 2),
            "trials": asked,
            "per_trial_s": round(outside / max(1, asked), 3),
            "main_thread_by_step_s": main_thread,
            "main_thread_other_s": round(outside - sum(main_thread.values()), 3),
        },
        "background_thread_busy_s": round(clock.seconds["background thread"], 2),
        "trial_states": dict(states),
        "trials_in_study": len(trials),
        "trials_ended": ended_here,
    }


def _option(options: list[str], name: str, default: str) -> str:
    for i, option in enumerate(options):
        if option == name and i + 1 < len(options):
            return options[i + 1]
        if option.startswith(name + "="):
            return option.split("=", 1)[1]
    return default


if __name__ == "__main__":
    main()
