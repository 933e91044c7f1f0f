#!/usr/bin/env bash
# The GPU check of issue 3: `catdog-study bench` at 256 px, a 40-trial study, --jobs 1 against
# --jobs N, and the bench with --compile, on generated (SYNTHETIC) images; figures as JSON.
#
# The GPU machine has Python 3.12 with torch but no package registry. Before going there, fill
# .whl/ on the development machine, from the project root:
#     ../shared/device/wheels.sh optuna-dashboard==0.21.0 bottle==0.13.4 plotly==7.1.0 narwhals==2.29.0 PyYAML==6.0.4
# On the GPU machine, from the project root (OUT: the folder whose files come back):
#     tools/gpu_check.sh                     # full plan, within about 9 minutes
#     tools/gpu_check.sh --mode quick        # a shorter pass
# Through the session's `run` tool, .whl/ is git-ignored: name it in carry ([".whl"]).
# Anywhere, to check the script itself (CPU is fine):
#     PYTHON=.venv/bin/python tools/gpu_check.sh --device cpu --mode dry-run
# Results: $OUT/gpu_check.json (rewritten after every step), $OUT/bench*.json, $OUT/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
out=${OUT:-$PWD/storage/gpu-check}
mkdir -p "$out"

if ! "$python" -c "import optuna, optuna_dashboard, plotly, sqlalchemy, yaml" 2>/dev/null; then
  if ! compgen -G ".whl/*.whl" >/dev/null; then
    echo "error: optuna is not installed and .whl/ holds no wheels:" \
      "run ../shared/device/wheels.sh optuna-dashboard==0.21.0 bottle==0.13.4 plotly==7.1.0 narwhals==2.29.0 PyYAML==6.0.4 first" >&2
    exit 1
  fi
  "$python" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
  if ! "$python" -c "import optuna, optuna_dashboard, plotly, sqlalchemy, yaml"; then
    echo "error: .whl/ lacks a wheel (above):" \
      "run ../shared/device/wheels.sh optuna-dashboard==0.21.0 bottle==0.13.4 plotly==7.1.0 narwhals==2.29.0 PyYAML==6.0.4" >&2
    exit 1
  fi
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi

"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
exec "$python" tools/gpu_check.py --out "$out" "$@"
