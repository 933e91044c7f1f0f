"""Arguments and small disks shared by the study tests."""

import errno
import os
import subprocess
from pathlib import Path

import pytest


def fast_study_args(data, *extra) -> list:
    """optimize options for a quick CPU study on the tiny set."""
    return ["optimize", "--data", data, "--device", "cpu", "--precision", "fp32", *extra]


def one_error_line(result) -> str:
    """The one `Error:` line of a command that failed as a user's mistake (exit 1, no
    traceback)."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def read_only(folder: Path) -> None:
    """Remount the small_disk `folder` read-only, as a :ro volume or a DVD is."""
    mount_or_skip(["-o", "remount,ro", str(folder)])


def fill(folder: Path) -> None:
    """Write a file in `folder` until its disk is full."""
    descriptor = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            os.write(descriptor, bytes(1 << 16))
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
    finally:
        os.close(descriptor)


def mount_or_skip(args: list[str]) -> None:
    """`mount ARGS`, or skip the test where this user or machine may not mount."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs the tests as root)")
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"mount is not permitted here: {done.stderr.strip()}")
