"""Train the CNN on device-resident uint8 images and return its per-epoch history.

The data set lives on the training device as uint8 (N, 3, S, S); each step gathers a batch by
index, augments it there and runs the step in channels_last, in bf16 autocast where that is
faster. Losses and correct counts accumulate on the device and are read once per epoch, so the
host never waits on the device mid-epoch. `train` knows nothing about the study: an `on_epoch`
callback sees each epoch's metrics (and may raise to stop, which is how pruning works), and a
`TrainState` lets a caller checkpoint and resume a run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from catdog.augment import augment, to_float
from catdog.cache import ImageSet
from catdog.config import TrainConfig
from catdog.errors import CatdogError
from catdog.model import CatDogCNN
from catdog.optim import build_optimizer, build_schedule


class TrainingDiverged(CatdogError, RuntimeError):
    """The loss became NaN or infinite; the message says in which epoch."""


# How torch's CPU allocator refuses (c10/core/impl/alloc_cpu.cpp, "DefaultCPUAllocator: can't
# allocate memory: you tried to allocate N bytes", "not enough memory" on Windows): a plain
# RuntimeError, where a GPU's refusal is a torch.OutOfMemoryError.
CPU_ALLOCATOR_REFUSALS = ("DefaultCPUAllocator: can't allocate", "DefaultCPUAllocator: not enough")


def is_out_of_memory(error: BaseException) -> bool:
    """True when `error` is a refusal to allocate: torch.OutOfMemoryError (a GPU), the CPU
    allocator's RuntimeError (under ulimit -v, or where Linux does not overcommit), or Python's
    MemoryError. A process killed for memory (a container's limit, Linux's OOM killer) raises
    nothing: it ends with SIGKILL."""
    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(error, RuntimeError) and any(
        refusal in str(error) for refusal in CPU_ALLOCATOR_REFUSALS
    )


@dataclass(frozen=True)
class DeviceImages:
    """A decoded split moved once to the training device."""

    images: torch.Tensor  # (N, 3, S, S) uint8, channels_last in memory (N, S, S, 3)
    labels: torch.Tensor  # (N,) int64, in [0, num_classes)
    num_classes: int = 2  # the model's outputs: the data set's classes (2: cats and dogs)

    @classmethod
    def from_image_set(cls, image_set: ImageSet, device: torch.device) -> DeviceImages:
        # Stored channels_last, the model's memory format: evaluation batches need no
        # reordering, and grid_sample reads it faster (bilinear: 60 against 100 ms per batch
        # of 128 at 256 px on a 2-core CPU).
        images = image_set.images.to(device).contiguous(memory_format=torch.channels_last)
        return cls(images, image_set.labels.to(device), len(image_set.classes))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int  # 1-based
    train_loss: float  # mean training cross-entropy over the epoch (with label smoothing)
    train_accuracy: float  # fraction of training images classified right, as augmented
    eval_loss: float  # mean cross-entropy on the evaluation set after the epoch
    eval_accuracy: float  # fraction of evaluation images classified right
    seconds: float  # wall time of training plus evaluation

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class TrainState:
    """Everything needed to continue a run after its last finished epoch."""

    model: CatDogCNN
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator  # drives shuffling and augmentation
    history: list[EpochMetrics] = field(default_factory=list)

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values only, so it loads back with torch.load(weights_only=True)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "generator": self.generator.get_state(),
            "history": [m.to_dict() for m in self.history],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.generator.set_state(state["generator"].cpu())
        self.history = [EpochMetrics(**m) for m in state["history"]]


# "inductor" generates fused kernels; the tests use "eager" (same capture and caching, no codegen).
COMPILE_BACKEND = "inductor"

EpochCallback = Callable[[EpochMetrics, TrainState], None]


def autocast(device: torch.device, precision: str):
    """bf16 autocast context for precision 'bf16', nothing for 'fp32'."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def new_state(
    config: TrainConfig, data: DeviceImages, seed: int, *, compile: bool = False
) -> TrainState:
    """Fresh model, optimizer, schedule and generator; `seed` fixes all of their randomness.

    compile: torch.compile the model in place (its state_dict keys stay plain). Dynamo keeps
    compiled code per process, keyed by code object and guarded on input shapes, dtypes and
    modes but not on the module instance, so every later model of the same image size reuses
    the first one's code: the compile cost is paid once per process, not once per trial.
    """
    device = data.images.device
    torch.manual_seed(seed)  # weight initialisation
    model = CatDogCNN(data.image_size, data.num_classes)
    model = model.to(device, memory_format=torch.channels_last)
    if compile:
        model.compile(backend=COMPILE_BACKEND)
    optimizer = build_optimizer(config, model.parameters(), device)
    schedule = build_schedule(config, optimizer, steps_per_epoch(len(data), config.batch_size))
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return TrainState(model, optimizer, schedule, generator)


def steps_per_epoch(num_images: int, batch_size: int) -> int:
    # A last batch of a single image is dropped: BatchNorm cannot normalise one value.
    full, rest = divmod(num_images, batch_size)
    return full + (1 if rest >= 2 else 0)


def train(
    config: TrainConfig,
    train_data: DeviceImages,
    eval_data: DeviceImages,
    *,
    precision: str = "fp32",
    seed: int = 0,
    on_epoch: EpochCallback | None = None,
    resume: dict[str, Any] | None = None,
    compile: bool = False,
) -> TrainState:
    """Run config.epochs epochs (after any resumed ones) and return the final state.

    `resume` is a TrainState.state_dict() of an earlier run of the same config and seed;
    `compile` runs the model through torch.compile (see new_state).
    Raises TrainingDiverged when a loss stops being finite.
    """
    state = new_state(config, train_data, seed, compile=compile)
    if resume is not None:
        state.load_state_dict(resume)
    for epoch in range(len(state.history) + 1, config.epochs + 1):
        started = time.perf_counter()
        train_loss, train_accuracy = train_epoch(state, config, train_data, precision)
        eval_loss, eval_accuracy = evaluate(state.model, eval_data, precision)
        metrics = EpochMetrics(
            epoch,
            train_loss,
            train_accuracy,
            eval_loss,
            eval_accuracy,
            time.perf_counter() - started,
        )
        if not (math.isfinite(train_loss) and math.isfinite(eval_loss)):
            raise diverged(config, metrics)
        state.history.append(metrics)
        if on_epoch is not None:
            on_epoch(metrics, state)
    return state


def diverged(config: TrainConfig, metrics: EpochMetrics) -> TrainingDiverged:
    """The error for an epoch whose training or evaluation loss is not finite."""
    return TrainingDiverged(
        f"loss is not finite in epoch {metrics.epoch} (train {metrics.train_loss}, "
        f"eval {metrics.eval_loss}); lr {config.lr:g} with {config.optimizer} is probably too high"
    )


def train_epoch(
    state: TrainState, config: TrainConfig, data: DeviceImages, precision: str
) -> tuple[float, float]:
    """One pass over the training images; returns (mean loss, accuracy)."""
    device = data.images.device
    state.model.train()
    count = len(data)
    order = batch_order(count, config.shuffle, state.generator)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    for step in range(steps_per_epoch(count, config.batch_size)):
        index = order[step * config.batch_size : (step + 1) * config.batch_size]
        images = augment(data.images[index], config.augmentation, state.generator)
        labels = data.labels[index]
        loss, logits = training_step(
            state, config, model_input(images, precision), labels, precision
        )
        loss_sum += loss.float() * len(index)
        correct += (logits.argmax(dim=1) == labels).sum()
        seen += len(index)
    return loss_sum.item() / seen, correct.item() / seen


def model_input(pixels: torch.Tensor, precision: str) -> torch.Tensor:
    """Float pixels (B, 3, S, S) in the model's memory format, and in bf16 for precision 'bf16'.

    Autocast would cast the first convolution's input to bf16 anyway (the same rounding); doing
    it here, together with the reordering, makes one pass of it, and the step itself ran about
    5 % faster on bf16 input on a 2-core CPU.
    """
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    return pixels.to(dtype=dtype, memory_format=torch.channels_last)


def training_step(
    state: TrainState,
    config: TrainConfig,
    images: torch.Tensor,
    labels: torch.Tensor,
    precision: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on a prepared batch; returns (loss, logits), detached, on the device.

    images: model_input() pixels (B, 3, S, S); labels: (B,) int64.
    """
    with autocast(images.device, precision):
        logits = state.model(images)
        loss = F.cross_entropy(logits, labels, label_smoothing=config.label_smoothing)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    state.optimizer.step()
    state.schedule.step()
    return loss.detach(), logits.detach()


def batch_order(count: int, shuffle: bool, generator: torch.Generator) -> torch.Tensor:
    """Indices of one epoch's images: a fresh permutation, or the class-sorted file order."""
    if shuffle:
        return torch.randperm(count, device=generator.device, generator=generator)
    return torch.arange(count, device=generator.device)


def eval_batch_size(image_size: int) -> int:
    # About 16 M input pixels per batch: 256 images at 256 px, 1024 at 128 px and below.
    return max(64, min(1024, 2**24 // (image_size * image_size)))


@torch.inference_mode()
def evaluate(model: CatDogCNN, data: DeviceImages, precision: str) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) on un-augmented images, in large batches."""
    model.eval()
    device = data.images.device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    batch = eval_batch_size(data.image_size)
    for start in range(0, len(data), batch):
        images = model_input(to_float(data.images[start : start + batch]), precision)
        labels = data.labels[start : start + batch]
        with autocast(device, precision):
            logits = model(images)
        loss_sum += F.cross_entropy(logits.float(), labels, reduction="sum")
        correct += (logits.argmax(dim=1) == labels).sum()
    return loss_sum.item() / len(data), correct.item() / len(data)


@torch.inference_mode()
def predict_probabilities(
    model: CatDogCNN, images: torch.Tensor, precision: str = "fp32"
) -> torch.Tensor:
    """Softmax class probabilities (B, N classes) for uint8 images (B, 3, S, S)."""
    model.eval()
    device = next(model.parameters()).device
    pixels = model_input(to_float(images.to(device)), precision)
    with autocast(device, precision):
        logits = model(pixels)
    return torch.softmax(logits.float(), dim=1).cpu()
