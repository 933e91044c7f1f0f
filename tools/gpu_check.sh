#!/usr/bin/env bash
# Measures this project's speed on one CUDA GPU and writes the figures as JSON: `catdog-study
# bench` at 256 px (the report's pipeline vs this project's epoch vs the bare training step), a
# 40-trial study, a short study with --jobs 1 and with --jobs 4, and the bench with --compile,
# all on a generated SYNTHETIC set of 8 000 + 2 000 photo-sized JPEGs, within about 9 minutes.
# The steps and their limits are in tools/gpu_check.py; docs/DEVELOPMENT.md explains the figures.
#
# On any machine whose Python has torch and sees the GPU, from the project root:
#     PYTHON=.venv/bin/python tools/gpu_check.sh                 # the full plan
#     PYTHON=.venv/bin/python tools/gpu_check.sh --mode quick    # a shorter pass
#     PYTHON=.venv/bin/python tools/gpu_check.sh --device cpu --mode dry-run
# (the last checks the script itself, on any machine, CPU included, in a few minutes).
# PYTHON defaults to python3. Further options go to gpu_check.py (--budget SECONDS, --work DIR).
# Where that Python lacks Optuna and the project's other packages and the machine has no package
# index, download their wheels into .whl/ in the project root on a machine that has one, for the
# GPU machine's Python version and platform, e.g.
#     python3 -m pip download --dest .whl --only-binary=:all: --python-version 3.12 \
#         --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
#         optuna 'optuna-dashboard>=0.21,<0.22' sqlalchemy click pillow numpy safetensors matplotlib plotly
# and copy the project there with it: this script then installs .whl/*.whl into /tmp/site.
# Results: $OUT/gpu_check.json and $OUT/gpu_check-details.tar.gz (each step's JSON and log), both
# rewritten after every step (a device run returns at most 8 files); OUT defaults to
# storage/gpu-check. With GPU_CHECK set, that script's own files (its header lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
out=${OUT:-$PWD/storage/gpu-check}
mkdir -p "$out"

if ! "$python" -c "import optuna, optuna_dashboard, plotly, sqlalchemy, yaml" 2>/dev/null; then
  if ! compgen -G ".whl/*.whl" >/dev/null; then
    echo "error: optuna is not installed and .whl/ holds no wheels:" \
      "download the wheels as this script's header says, first" >&2
    exit 1
  fi
  "$python" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
  if ! "$python" -c "import optuna, optuna_dashboard, plotly, sqlalchemy, yaml"; then
    echo "error: .whl/ lacks a wheel (above):" \
      "download it as this script's header says" >&2
    exit 1
  fi
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi

"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
# GPU_CHECK: another script of tools/ to run the same way (e.g. tools/fused_targets.py).
exec "$python" "${GPU_CHECK:-tools/gpu_check.py}" --out "$out" "$@"
