"""What every `catdog-study` command (and every --jobs worker) pays before it starts."""

import subprocess
import sys


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
