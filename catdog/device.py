"""Resolve the training device once, and pick the numeric precision it runs fastest in.

The precision is chosen by what the hardware supports, never by a timing, so that a study's
trials train alike on a busy machine and on an idle one.
"""

from __future__ import annotations

import ctypes
import functools
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

from catdog.config import PRECISIONS
from catdog.errors import CatdogError


class DeviceError(CatdogError, ValueError):
    """A device was asked for that this machine does not have."""


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda if present else cpu; an explicit device that is absent is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {name} was asked for but this machine has no usable CUDA GPU"
            )
        index = device.index or 0
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {name} was asked for but only {torch.cuda.device_count()} GPU(s) exist"
            )
        return torch.device("cuda", index)
    if device.type != "cpu":
        raise DeviceError(f"unsupported device {name!r}: use auto, cpu, cuda or cuda:N")
    return device


def configure(device: torch.device) -> None:
    """Process-wide speed settings for the device (cuDNN autotuning, TF32 matmuls; on CPU,
    memory reuse)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: autotune each conv once
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        keep_freed_memory()


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse; True where that was set.

    A CPU training step at 256 px allocates and frees activations of up to 260 MB each. glibc
    maps every block above 32 MB afresh and unmaps it on free, so each step page-faults about
    2 GB back in: measured here, 600 000 faults and over a second of kernel time per step of
    128 images, a third of the step. Serving large blocks from the heap and never trimming it
    lets later steps reuse the same pages (what jemalloc or tcmalloc would do). The heap stays
    at the peak size of a step.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_max = -1, -4  # from glibc's malloc.h
    return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))


# CPU features (names as torch.cpu.get_capabilities() and Linux's /proc/cpuinfo both spell them)
# that execute bf16 arithmetic natively, best first, with the name a user knows them by. Without
# one, bf16 is emulated with fp32 instructions plus conversions, slower than fp32 itself (issue 21:
# 42 against 250 training images/s on a 2-core AMD CPU without them).
BF16_INSTRUCTIONS = (
    ("amx_bf16", "AMX-BF16"),  # Intel Sapphire Rapids and later
    ("avx512_bf16", "AVX512-BF16"),  # Intel Cooper Lake and later, AMD Zen 4 and later
    ("bf16", "Arm BF16"),  # Armv8.6-A (e.g. Neoverse V1/N2, Graviton 3, Apple M2)
)


CPUINFO = Path("/proc/cpuinfo")  # Linux's description of each CPU, its features among it


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision a run trains in, and why (for the one line the user reads)."""

    precision: str  # "fp32" or "bf16"
    reason: str  # e.g. "this CPU has AVX512-BF16 instructions"

    def __str__(self) -> str:
        return f"precision: {self.precision} ({self.reason})"


def choose_precision(requested: str, device: torch.device) -> PrecisionChoice:
    """'fp32' or 'bf16', and why. auto: bf16 on CUDA GPUs that support it, and on CPUs with bf16
    instructions (BF16_INSTRUCTIONS); the same answer on a busy machine as on an idle one.

    ValueError for an unknown precision; DeviceError for bf16 on a GPU without it."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
    if requested != "auto":
        if requested == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise DeviceError(f"{device} does not support bf16")
        return PrecisionChoice(requested, f"--precision {requested}")
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return PrecisionChoice("bf16", "this GPU supports bf16")
        return PrecisionChoice("fp32", "this GPU does not support bf16")
    features = cpu_features()
    if features is None:
        return PrecisionChoice("fp32", "this CPU's instruction sets could not be read")
    for feature, name in BF16_INSTRUCTIONS:
        if feature in features:
            return PrecisionChoice("bf16", f"this CPU has {name} instructions")
    return PrecisionChoice(
        "fp32", "this CPU has no bf16 instructions: bf16 would be emulated, slower than fp32"
    )


def cpu_features() -> frozenset[str] | None:
    """The CPU's instruction-set features, lower case ('avx2', 'avx512_bf16', 'bf16', ...), or
    None when they cannot be read.

    torch.cpu.get_capabilities() where this torch has it (public and documented; the cpuinfo
    library reads the CPU on every OS), else the kernel's list in /proc/cpuinfo (Linux: x86
    `flags`, Arm `Features`). Not torch.backends.cpu.get_cpu_capability(): it names the vector
    width only ("AVX512" with and without bf16 instructions); nor
    torch.ops.mkldnn._is_mkldnn_bf16_supported(): private, and on x86 true wherever oneDNN can
    run bf16 at all, emulated included, which is the slow case.
    """
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    if get_capabilities is not None:
        return frozenset(name for name, value in get_capabilities().items() if value is True)
    try:
        text = CPUINFO.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return None
