"""A tool's step run as a child process with a deadline (gpu_check, fused_check, fused_probe)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO


def run_with_deadline(
    command: Sequence[str],
    log: IO[str],
    allowed_s: float,
    *,
    cwd: str | Path | None = None,
    grace_s: float = 0.0,
) -> tuple[int | None, float]:
    """Run `command` with its output into `log`; after `allowed_s` seconds stop it.

    The child gets its own session, so stopping it stops what it started too (`--jobs` workers,
    a compile's workers): SIGTERM to the group first when `grace_s` > 0, SIGKILL after that.
    Returns (exit status, or None when it was stopped; seconds it ran).
    """
    started = time.monotonic()
    process = subprocess.Popen(
        list(command), cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        status: int | None = process.wait(timeout=allowed_s)
    except subprocess.TimeoutExpired:
        status = None
        if grace_s > 0:
            os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace_s)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return status, time.monotonic() - started
