"""Helpers for running the command line the way a user does, on the tests' tiny data set."""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result

from study.cli import cli


@pytest.fixture
def run_cli(in_tmp):
    """Invoke `catdog-study ARGS...` in the test's own folder; returns click's Result."""

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)

    return invoke
