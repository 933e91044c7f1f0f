"""Helpers for running the command line the way a user does, on the tests' tiny data set."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from study.cli import cli

from .helpers import mount_or_skip


@pytest.fixture
def run_cli(in_tmp):
    """Invoke `catdog-study ARGS...` in the test's own folder; returns click's Result."""

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)

    return invoke


@pytest.fixture
def small_disk(tmp_path):
    """small_disk(size, name="disk") -> a new folder that is a tmpfs of `size` ("4m"): a disk
    that fills. Unmounted after the test; skipped where mounting is not allowed (not root, a
    container without CAP_SYS_ADMIN). CI runs the tests as root."""
    mounted = []

    def mount(size: str, name: str = "disk") -> Path:
        folder = tmp_path / name
        folder.mkdir()
        mount_or_skip(["-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)])
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], check=False)
