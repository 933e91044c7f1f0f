"""Start `catdog-study optimize` as real worker processes, the way users start them by hand."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import optuna


def start_worker(folder: Path, log_name: str, *args: object) -> subprocess.Popen:
    """`python -m study optimize ARGS` in `folder`, its output in folder/log_name."""
    log = open(folder / log_name, "w")  # noqa: SIM115 - closed when the process is reaped
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "study", "optimize", *map(str, args)],
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )


def wait_all(processes: list[subprocess.Popen], timeout: float = 300) -> list[int]:
    deadline = time.monotonic() + timeout
    return [p.wait(timeout=max(1, deadline - time.monotonic())) for p in processes]


def wait_for(condition, timeout: float = 120, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def trials_of(storage: str, name: str = "catdog") -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    except KeyError:
        return []
