"""What every `catdog-study` command (and every --jobs worker) pays before it starts."""

import subprocess
import sys

import pytest


def test_the_command_line_does_not_import_torchvision_until_bench_needs_it():
    # torchvision took about 2 s to import on the 2-core dev VM, 40 % of the CLI's start-up;
    # only the benchmark's classic pipeline uses it.
    code = (
        "import sys, study.cli, catdog.bench\n"
        "assert 'torchvision' not in sys.modules, 'imported at start-up'\n"
        "from catdog.classic import classic_transform\n"
        "classic_transform(64)\n"
        "assert 'torchvision' in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# Libraries that take seconds to import between them: torch alone took about 1 s on the 2-core
# dev VM, and `catdog-study --help` took 2.3 s when every command loaded them.
HEAVY = ("torch", "optuna_dashboard", "plotly", "matplotlib")


@pytest.mark.parametrize(
    "args", [["--help"], ["space", "show"], ["optimize", "--help"], ["data", "--help"]]
)
def test_help_and_space_show_import_no_heavy_library(args):
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "study", *args],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert not heavy, f"`catdog-study {' '.join(args)}` imported {heavy[:5]}"
