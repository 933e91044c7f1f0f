"""How many CPU cores this process may use."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on: those of its CPU affinity (`taskset`, a container's
    cpuset), not all the machine's, which `os.cpu_count()` counts. At least 1."""
    if hasattr(os, "sched_getaffinity"):  # Linux
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
