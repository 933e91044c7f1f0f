"""How many trials to fuse on a device, for `--fuse auto`: measured in a few seconds.

On a GPU, K members are timed for a training epoch of random images at the run's image size,
batch size and precision, doubling K while the aggregate throughput (K x images/s) still grows
by MIN_GAIN; the K before it stops growing is chosen. The measurement runs the fused trainer
itself, so a device where fused training fails falls back to one trial at a time. On a CPU it is
1: measured on a 2-core VM, fusing gained nothing there (README, "Speed").
"""

from __future__ import annotations

import time
import warnings

import torch

from catdog.config import TrainConfig
from catdog.fused.trainer import FusedTrainer
from catdog.train import DeviceImages

CANDIDATES = (1, 2, 4, 8, 16, 32)  # K tried, in order
MIN_GAIN = 1.15  # doubling K must add at least 15 % aggregate training throughput
STEPS = 4  # training steps per timed epoch


def choose_slots(
    device: torch.device, image_size: int, batch_size: int, precision: str, *, most: int = 32
) -> int:
    """K for `--fuse auto`: 1 on a CPU; on a GPU the measured K (at most `most`)."""
    if device.type != "cuda":
        return 1
    images = _random_images(device, image_size, STEPS * batch_size)
    rates: dict[int, float] = {}
    for slots in (k for k in CANDIDATES if k <= most):
        try:
            rate = _training_rate(images, slots, batch_size, precision)
        except torch.OutOfMemoryError:
            break
        except RuntimeError as error:  # fused training does not work here: do without
            message = f"fused training failed on {device} ({error}); one trial at a time"
            warnings.warn(message, stacklevel=2)
            return 1
        finally:
            torch.cuda.empty_cache()
        if rates and rate < max(rates.values()) * MIN_GAIN:
            break
        rates[slots] = rate
    return max(rates, key=rates.get, default=1)


def _random_images(device: torch.device, image_size: int, count: int) -> DeviceImages:
    generator = torch.Generator(device=device).manual_seed(0)
    images = torch.randint(
        0,
        256,
        (count, 3, image_size, image_size),
        dtype=torch.uint8,
        device=device,
        generator=generator,
    ).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 2, (count,), device=device, generator=generator)
    return DeviceImages(images, labels)


def _training_rate(images: DeviceImages, slots: int, batch_size: int, precision: str) -> float:
    """Aggregate training images/s of `slots` members, after one untimed warm-up epoch."""
    trainer = FusedTrainer(images, images, slots=slots, batch_size=batch_size, precision=precision)
    for slot in range(slots):
        trainer.start(slot, TrainConfig(batch_size=batch_size, epochs=2), seed=slot)
    trainer.train_epoch()  # cuDNN picks its kernels for these shapes
    torch.cuda.synchronize(images.images.device)
    started = time.perf_counter()
    trainer.train_epoch()
    torch.cuda.synchronize(images.images.device)
    return slots * len(images) / (time.perf_counter() - started)
