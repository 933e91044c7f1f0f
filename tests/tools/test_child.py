"""tools/child.py: a GPU tool's step stopped at its deadline, with what it started."""

import os
import sys
import textwrap
import time

import pytest

# A step that starts a worker of its own (as `optimize --jobs` does), writes its pid, then hangs;
# with `--term` it ignores SIGTERM, as a step busy in a CUDA call may.
STEP = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    if "--term" in sys.argv:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print(worker.pid, flush=True)
    time.sleep(600)
    """
)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # An orphan reaped by init may linger a moment as a zombie: it no longer runs.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1].startswith("Z")


def _stops(pid: int) -> bool:
    """Whether `pid` is gone within 10 s: the signal reaches it at once, its end follows."""
    deadline = time.monotonic() + 10
    while not _gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _worker_pid(log_path) -> int:
    return int(log_path.read_text().split()[0])


def test_a_step_that_ends_in_time_gives_its_exit_status(tool, tmp_path):
    child = tool("child")
    with open(tmp_path / "step.log", "w") as log:
        status, seconds = child.run_with_deadline(
            [sys.executable, "-c", "print('done'); raise SystemExit(3)"], log, 60
        )
    assert status == 3 and seconds >= 0
    assert (tmp_path / "step.log").read_text() == "done\n"


@pytest.mark.parametrize("args, grace_s", [([], 0.0), ([], 30.0), (["--term"], 1.0)])
def test_a_step_past_its_deadline_is_stopped_with_the_worker_it_started(
    tool, tmp_path, args, grace_s
):
    child = tool("child")
    log_path = tmp_path / "step.log"
    with open(log_path, "w") as log:
        status, _ = child.run_with_deadline(
            [sys.executable, "-c", STEP, *args], log, 3, grace_s=grace_s
        )
    assert status is None
    assert _stops(_worker_pid(log_path))
