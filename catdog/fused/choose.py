"""How many trials to fuse on a device, for `--fuse auto`: measured at start, in seconds.

On a GPU, with the settings training uses (catdog.device.configure first: cuDNN autotuning on),
at the run's image size, batch size and precision, for widths K = 1, 2, 4, ... (catdog.fused.
measure, on random images):

  1. per block, K split convolutions or one grouped one, whichever trained faster at this K;
  2. one epoch of the fused trainer untimed (its autotuning cost is kept), one timed:
     the aggregate training images/s, and the peak memory.

K doubles while the aggregate rate grows by MIN_GAIN. It stops before a width whose block-1
activations would pass 2^31 elements (32-bit indexing in cuDNN and many CUDA kernels: from K =
17 at batch 128 and 256 px), or whose memory, predicted from the last width's peak (activations
grow linearly in K), would not fit in MEMORY_SHARE of what was free at start less the data set;
after a width whose measured peak did not; and at the first width that fails (out of memory or
any other RuntimeError): the best width measured so far is kept, and the reason with it. On a
CPU it is 1, unmeasured: measured on a 2-core VM, fusing gained nothing there (docs/DEVELOPMENT.md,
"Speed"). The choice (FuseChoice) carries every figure, for the study to show why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from catdog.device import configure
from catdog.fused.measure import EpochRate, fastest_split, random_images, training_rate
from catdog.model import block_sides, conv_blocks

CANDIDATES = (1, 2, 4, 8, 16, 32)  # K tried, in order
MIN_GAIN = 1.15  # doubling K must add at least 15 % aggregate training throughput
STEPS = 4  # training steps per measured epoch
MAX_ELEMENTS = 2**31 - 1  # the most elements one tensor may hold
MEMORY_SHARE = 0.8  # of the device memory free at start (less the data set) training may use


@dataclass(frozen=True)
class WidthFigures:
    """What was measured at one width."""

    rate: EpochRate
    split: tuple[bool, ...]  # per block: its convolution runs split (faster there)
    convolution_s: list[dict[str, float]] = field(default_factory=list)  # per block, both ways

    @property
    def width(self) -> int:
        return self.rate.width


@dataclass(frozen=True)
class FuseChoice:
    """The K a run trains at once, why, and what was measured to choose it."""

    width: int
    reason: str  # one line: why this K and not the next
    measured: tuple[WidthFigures, ...] = ()
    setting: str = ""  # what was measured: "NVIDIA H200, batch 128, 256 px, bf16"

    @property
    def split_layers(self) -> dict[int, tuple[bool, ...]]:
        """By measured width, which blocks' convolutions train faster split (FusedTrainer's
        split_layers)."""
        return {figures.width: figures.split for figures in self.measured}

    def rates_line(self) -> str:
        """E.g. 'K=1 12 480, K=2 23 100 images/s (autotuning 2.1, 1.4 s)'; '' unmeasured."""
        if not self.measured:
            return ""
        rates = ", ".join(
            f"K={f.width} {f.rate.images_per_second:,.0f}".replace(",", " ") for f in self.measured
        )
        tuning = ", ".join(f"{f.rate.autotune_s:.1f}" for f in self.measured)
        split = "; ".join(
            f"K={f.width} blocks {', '.join(str(i + 1) for i, s in enumerate(f.split) if s)}"
            for f in self.measured
            if any(f.split)
        )
        line = f"aggregate training {rates} images/s (autotuning {tuning} s)"
        return line + (f"; split convolutions faster at {split}" if split else "")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the study's user attrs (the dashboard shows them)."""
        return {
            "chosen": self.width,
            "why": self.reason,
            "measured_on": self.setting,
            "images_per_second": {
                str(f.width): round(f.rate.images_per_second) for f in self.measured
            },
            "autotune_s": {str(f.width): round(f.rate.autotune_s, 2) for f in self.measured},
            "peak_gib": {
                str(f.width): round(f.rate.peak_bytes / 2**30, 2)
                for f in self.measured
                if f.rate.peak_bytes is not None
            },
            "split_blocks": {
                str(f.width): [i + 1 for i, s in enumerate(f.split) if s] for f in self.measured
            },
        }


def choose_width(
    device: torch.device,
    image_size: int,
    batch_size: int,
    precision: str,
    *,
    most: int = CANDIDATES[-1],
    data_bytes: int = 0,
) -> FuseChoice:
    """K for `--fuse auto` (at most `most`): 1 on a CPU, measured on a GPU (module docstring).

    data_bytes: device memory the run's images will take (they are not there yet).
    """
    if device.type != "cuda":
        return FuseChoice(1, "not measured on a CPU, where fusing gained nothing (2-core VM)")
    configure(device)  # cudnn.benchmark and TF32, as the worker sets them for training
    free, _ = torch.cuda.mem_get_info(device)
    images = random_images(device, image_size, STEPS * batch_size)

    def measure(width: int) -> WidthFigures:
        split, seconds = (False,) * len(conv_blocks(image_size)), []
        if width > 1:
            split, seconds = fastest_split(
                width,
                image_size=image_size,
                batch_size=batch_size,
                precision=precision,
                device=device,
            )
        try:
            rate = training_rate(images, width, batch_size, precision, split_layers={width: split})
        finally:
            torch.cuda.empty_cache()
        return WidthFigures(rate, split, seconds)

    # The random images stay cached by torch's allocator: training's own reuse that memory.
    width, reason, measured = search_width(
        measure,
        [k for k in CANDIDATES if k <= most],
        widest=widest(image_size, batch_size),
        memory_bytes=int(MEMORY_SHARE * (free - data_bytes)),
    )
    name = torch.cuda.get_device_name(device)
    setting = f"{name}, batch {batch_size}, {image_size} px, {precision}"
    return FuseChoice(width, reason, tuple(measured), setting)


def widest(image_size: int, batch_size: int) -> int:
    """The most members whose largest activation, (batch, K * C, side, side) of the block with
    the most elements per image (block 1), stays within MAX_ELEMENTS."""
    per_member = max(
        out_channels * side * side
        for (_, out_channels, _, _), (_, side) in zip(
            conv_blocks(image_size), block_sides(image_size), strict=True
        )
    )
    return MAX_ELEMENTS // (batch_size * per_member)


def search_width(
    measure: Callable[[int], WidthFigures],
    candidates: Sequence[int],
    *,
    widest: int,
    memory_bytes: int | None = None,
) -> tuple[int, str, list[WidthFigures]]:
    """(chosen K, why, figures of every width measured): the doubling of the module docstring,
    `measure` timing one width (it may raise torch.OutOfMemoryError or RuntimeError)."""
    measured: list[WidthFigures] = []
    best: WidthFigures | None = None
    reason = f"K={candidates[-1]} is the most tried" if candidates else "nothing to try"
    for width in candidates:
        if width > widest:
            reason = (
                f"K={width} not tried: a block-1 activation would pass 2^31 elements "
                f"(at most K={widest} at this batch size and image size)"
            )
            break
        need = _predicted_bytes(measured, width)
        if memory_bytes is not None and need is not None and need > memory_bytes:
            reason = (
                f"K={width} not tried: about {need / 2**30:.1f} GiB predicted, more than "
                f"the {memory_bytes / 2**30:.1f} GiB training may use"
            )
            break
        try:
            figures = measure(width)
        except RuntimeError as error:  # torch.OutOfMemoryError among them
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            reason = f"K={width} failed ({first_line})"
            break
        measured.append(figures)
        peak = figures.rate.peak_bytes
        if memory_bytes is not None and peak is not None and peak > memory_bytes:
            reason = (
                f"K={width} held {peak / 2**30:.1f} GiB, more than the "
                f"{memory_bytes / 2**30:.1f} GiB training may use"
            )
            break
        if best is not None:
            gain = figures.rate.images_per_second / best.rate.images_per_second
            if gain < MIN_GAIN:
                reason = (
                    f"K={width} gained {gain - 1:+.0%} over K={best.width} "
                    f"(less than {MIN_GAIN - 1:.0%})"
                )
                break
        best = figures
    kept = best.width if best is not None else 1
    return kept, f"{reason}; kept K={kept}", measured


def _predicted_bytes(measured: list[WidthFigures], width: int) -> float | None:
    """The last measured width's peak scaled to `width`; None before any peak is known."""
    if not measured or measured[-1].rate.peak_bytes is None:
        return None
    last = measured[-1]
    return last.rate.peak_bytes * width / last.width
