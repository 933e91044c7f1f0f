"""Start `catdog-study` as real processes, the way users start workers and the dashboard."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import optuna

from study.attrs import RESUME_ATTR


def start_worker(folder: Path, log_name: str, *args: object) -> subprocess.Popen:
    """`python -m study optimize ARGS` in `folder`, its output in folder/log_name.

    The worker takes Ctrl-C (SIGINT) as a terminal's foreground job does, also where the test
    run itself was started in the background, whose children inherit SIGINT ignored.
    """
    log = open(folder / log_name, "w")  # noqa: SIM115 - closed when the process is reaped
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "study", "optimize", *map(str, args)],
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        preexec_fn=_take_ctrl_c,
    )


def _take_ctrl_c() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_all(processes: list[subprocess.Popen], timeout: float = 300) -> list[int]:
    deadline = time.monotonic() + timeout
    return [p.wait(timeout=max(1, deadline - time.monotonic())) for p in processes]


def wait_for(condition, timeout: float = 120, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_for_checkpoint(
    storage: str, epochs: int, worker: subprocess.Popen, name: str = "catdog"
) -> None:
    """Wait until trial 0 has a resume checkpoint after `epochs` epochs, while its worker runs."""

    def checkpointed() -> bool:
        trials = trials_of(storage, name)
        return bool(trials) and trials[0].user_attrs.get(RESUME_ATTR, {}).get("epoch", 0) >= epochs

    wait_for(lambda: worker.poll() is not None or checkpointed(), what="a checkpoint of trial 0")
    assert worker.poll() is None, f"the worker ended with status {worker.returncode}"


def trials_of(storage: str, name: str = "catdog") -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    except KeyError:
        return []


@contextlib.contextmanager
def serve_dashboard(folder: Path, storage: str, *args: object) -> Iterator[str]:
    """`python -m study dashboard` on a free loopback port; yields its base URL once it answers.

    Its output goes to folder/dashboard.log (a file: an unread pipe could fill and stall it).
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_path = folder / "dashboard.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "study",
                "dashboard",
                "--port",
                str(port),
                "--storage",
                storage,
                *map(str, args),
            ],
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/api/studies", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"dashboard did not start:\n{log_path.read_text()}"
                    ) from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
