"""Timing fused training on a device: what `--fuse auto` (choose.py) and tools/fused_probe.py
measure. Random images, so nothing needs the data set; every figure waits for the device.

Both functions run on any device (the tests run them on the CPU); only a CUDA device reports
its peak memory. With cudnn.benchmark on (catdog.device.configure) the first pass at a new shape
autotunes its convolutions, so each measurement runs untimed first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from catdog.config import TrainConfig
from catdog.fused.model import FusedConv2d
from catdog.fused.trainer import FusedTrainer
from catdog.model import block_sides, conv_blocks
from catdog.train import DeviceImages, autocast

CONVOLUTION_REPEATS = 3  # timed training passes of one convolution, after two untimed


@dataclass(frozen=True)
class EpochRate:
    """One width's training, measured."""

    width: int  # members trained as one network
    images_per_second: float  # aggregate: width x images / seconds of the timed epoch
    first_epoch_s: float  # the untimed epoch: cuDNN autotunes the new width's shapes there
    epoch_s: float  # the timed epoch
    peak_bytes: int | None  # device memory the timed epoch held at its peak; None off CUDA

    @property
    def autotune_s(self) -> float:
        """What the first epoch cost beyond a timed one: autotuning, allocation, warm-up."""
        return max(0.0, self.first_epoch_s - self.epoch_s)


def random_images(device: torch.device, image_size: int, count: int) -> DeviceImages:
    """`count` random uint8 images (channels-last) and labels on `device`, seeded."""
    generator = torch.Generator(device=device).manual_seed(0)
    shape = (count, 3, image_size, image_size)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, device=device, generator=generator)
    labels = torch.randint(0, 2, (count,), device=device, generator=generator)
    return DeviceImages(images.contiguous(memory_format=torch.channels_last), labels)


def training_rate(
    images: DeviceImages,
    width: int,
    batch_size: int,
    precision: str,
    *,
    split_layers: Mapping[int, Sequence[bool]] | None = None,
) -> EpochRate:
    """Aggregate training images/s of `width` members of the report's recipe, the fused
    trainer itself on `images` (one epoch untimed, one timed); split_layers as FusedTrainer's.
    Raises what training raises (torch.OutOfMemoryError, RuntimeError)."""
    device = images.images.device
    trainer = FusedTrainer(
        images,
        images,
        slots=width,
        batch_size=batch_size,
        precision=precision,
        split_layers=split_layers,
    )
    for slot in range(width):
        trainer.start(slot, TrainConfig(batch_size=batch_size, epochs=2), seed=slot)
    first = timed(device, trainer.train_epoch)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = timed(device, trainer.train_epoch)
    peak = None
    if device.type == "cuda":  # what training holds beyond the images, at its peak
        peak = torch.cuda.max_memory_allocated(device) - images.images.nbytes
    return EpochRate(width, width * len(images) / seconds, first, seconds, peak)


def convolution_seconds(
    block: int,
    width: int,
    *,
    split: bool,
    image_size: int,
    batch_size: int,
    precision: str,
    device: torch.device,
) -> float:
    """Seconds of one training pass (forward, input gradient but in block 0, weight gradient)
    of block `block`'s fused convolution for `width` members on a random batch of activations
    (batch_size, width * Cin, side, side), grouped or split; the best of CONVOLUTION_REPEATS."""
    in_channels, out_channels, kernel, padding = conv_blocks(image_size)[block]
    side = block_sides(image_size)[block][0]
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    conv = FusedConv2d(
        width * in_channels,
        width * out_channels,
        kernel,
        padding=padding,
        groups=width,
        bias=False,
        split=split,
    ).to(device, memory_format=torch.channels_last)
    activations = torch.randn(batch_size, width * in_channels, side, side, device=device)
    activations = activations.to(dtype=dtype, memory_format=torch.channels_last)
    activations.requires_grad_(block > 0)  # block 1's input is the images: no gradient
    gradient = None

    def one_pass() -> None:
        nonlocal gradient
        with autocast(device, precision):
            out = conv(activations)
        if gradient is None:
            gradient = torch.randn_like(out)
        out.backward(gradient)

    for _ in range(2):  # the first autotunes (cudnn.benchmark), the second settles
        one_pass()
    return min(timed(device, one_pass) for _ in range(CONVOLUTION_REPEATS))


def fastest_split(
    width: int, *, image_size: int, batch_size: int, precision: str, device: torch.device
) -> tuple[tuple[bool, ...], list[dict[str, float]]]:
    """Per block, True where `width` split convolutions trained faster than one grouped one;
    and each block's seconds both ways ({"grouped": s, "split": s})."""
    seconds = [
        {
            way: convolution_seconds(
                block,
                width,
                split=way == "split",
                image_size=image_size,
                batch_size=batch_size,
                precision=precision,
                device=device,
            )
            for way in ("grouped", "split")
        }
        for block in range(len(conv_blocks(image_size)))
    ]
    return tuple(s["split"] < s["grouped"] for s in seconds), seconds


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU, which never queues)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, work: Callable[[], object]) -> float:
    """Seconds of `work()`, the device's queued work waited for before and after."""
    synchronize(device)
    started = time.perf_counter()
    work()
    synchronize(device)
    return time.perf_counter() - started
