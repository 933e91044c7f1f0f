"""What machine a GPU check ran on, for the JSON it writes (tools/gpu_check.py, fused_check.py)."""

from __future__ import annotations

import importlib.util
import os
import platform
from datetime import UTC, datetime

import torch


def environment(device: str) -> dict:
    """Date, device, GPU, CPU, cores and package versions; optuna's only where it is installed
    (fused_check needs torch alone)."""
    cuda = device.startswith("cuda") and torch.cuda.is_available()
    # The cores this process may use (its affinity), as catdog.cores counts them.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    found = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": cores,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
    }
    if importlib.util.find_spec("optuna") is not None:
        import optuna

        found["optuna"] = optuna.__version__
    return found
