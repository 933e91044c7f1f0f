"""Resolve the training device once, and pick the numeric precision that is fastest on it."""

from __future__ import annotations

import ctypes
import functools
import platform
import time
import warnings

import torch
import torch.nn.functional as F

from catdog.config import PRECISIONS
from catdog.errors import CatdogError
from catdog.model import CatDogCNN
from catdog.train import is_out_of_memory


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


def choose_precision(requested: str, device: torch.device, image_size: int) -> str:
    """'fp32' or 'bf16'. auto: bf16 on CUDA GPUs that support it; on CPU bf16 only when a
    short probe of the training step at this image size shows it faster than fp32."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
    if requested != "auto":
        if requested == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise DeviceError(f"{device} does not support bf16")
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    try:
        speedup = _cpu_bf16_speedup(image_size)
    except (RuntimeError, MemoryError) as error:
        if not is_out_of_memory(error):
            raise
        warnings.warn(
            f"the bf16 speed probe ran out of memory at {image_size} px: training in fp32",
            stacklevel=2,
        )
        return "fp32"
    return "bf16" if speedup >= 1.1 else "fp32"


@functools.cache
def _cpu_bf16_speedup(image_size: int) -> float:
    """fp32 step time / bf16 step time, measured on a small batch (about a second in all)."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(16, 3, image_size, image_size, generator=generator)
    images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 2, (16,), generator=generator)
    model = CatDogCNN(image_size).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    def seconds_per_step(dtype: torch.dtype | None) -> float:
        def step() -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
                loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        step()  # warm-up: first calls pick kernels and allocate
        started = time.perf_counter()
        repeats = 3
        for _ in range(repeats):
            step()
        return (time.perf_counter() - started) / repeats

    return seconds_per_step(None) / seconds_per_step(torch.bfloat16)
