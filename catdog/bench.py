"""Images per second of the classic pipeline, this project's epoch and the bare step, in one run.

Three ways to train (and to evaluate) the same network on the same split, on one device:

  classic  the report's pipeline (catdog.classic): PIL decode and transforms of every image on
           every pass, DataLoader batches of 128, fp32 model in the default memory format
  project  catdog.train's own epoch: the split's cached uint8 tensor on the device, batches
           gathered by index and augmented there, channels_last, the chosen precision
  bare     the same model, precision and memory format stepping on one batch already prepared
           on the device: no gathering, no augmentation, no metrics; the model's own compute
           cost and so the limit of the project's figure
  fused    (with settings.fuse = K) K trials trained as one network (catdog.fused), each with
           the project epoch's recipe and its own seed; its figure is the aggregate, K x images
           per second, to compare with one trial's project epoch and bare step

Each pipeline is timed `repeats` times, all interleaved (in alternating order) so that a
busy phase of a shared machine slows all of them alike. A figure is the median of its repeats; a
ratio is the median of the per-repeat ratios. The fastest repeat of each pipeline is reported
too: on a shared machine other work only ever slows a pass down. Nothing here asserts a speed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from catdog.augment import to_float
from catdog.bench_result import (
    FUSED,
    BenchResult,
    BenchSettings,
    PhaseResult,
    device_name,
    progress_line,
)
from catdog.cache import read_split
from catdog.classic import (
    classic_evaluate,
    classic_loader,
    classic_model,
    classic_train,
)
from catdog.config import TrainConfig
from catdog.dataset import find_dataset
from catdog.fused import FusedTrainer
from catdog.train import (
    DeviceImages,
    autocast,
    eval_batch_size,
    evaluate,
    model_input,
    new_state,
    steps_per_epoch,
    train_epoch,
    training_step,
)


def run_bench(
    data_root: Path,
    description: str,
    device: torch.device,
    settings: BenchSettings,
    *,
    cache_dir: Path | None,
    echo: Callable[[str], None] = print,
) -> BenchResult:
    """Time the pipelines on the data set at data_root; see the module docstring."""
    images = _bench_images(data_root, device, settings, cache_dir)
    passes = BenchPasses(images, device, settings)
    echo(
        f"warming up on {device} ({device_name(device)}): {settings.image_size} px, "
        f"{settings.precision}{', torch.compile' if settings.compile else ''}"
    )
    warmup = _timed(passes.warm_up, device)
    trained = sum(len(labels) for _, labels in passes.train_batches)  # a lone last image is out
    train_result = PhaseResult(trained, fused_members=settings.fuse)
    eval_result = PhaseResult(len(images.eval_data), fused_members=settings.fuse)
    for repeat in range(settings.repeats):
        pipelines = settings.pipelines
        order = pipelines if repeat % 2 == 0 else pipelines[::-1]
        for phase, timed in ((train_result, passes.train), (eval_result, passes.eval)):
            for pipeline in order:
                seconds = _timed(timed, device, pipeline)
                phase.seconds.setdefault(pipeline, []).append(seconds)
        echo(f"repeat {repeat + 1}/{settings.repeats}: {progress_line(train_result, eval_result)}")
    return BenchResult(
        settings, str(device), device_name(device), description, warmup, train_result, eval_result
    )


@dataclass(frozen=True)
class BenchImages:
    """The same randomly chosen images as files (classic) and on the device (project, bare)."""

    train_dir: Path
    test_dir: Path
    train_files: list[str]
    eval_files: list[str]
    train_data: DeviceImages
    eval_data: DeviceImages


def _bench_images(
    data_root: Path, device: torch.device, settings: BenchSettings, cache_dir: Path | None
) -> BenchImages:
    layout = find_dataset(data_root)
    train_dir, test_dir = layout.root / layout.train, layout.root / layout.test
    batch = TrainConfig().batch_size
    train_set = read_split(train_dir, settings.image_size, cache_dir)
    test_set = read_split(test_dir, settings.image_size, cache_dir)
    # Whole batches only where the split allows, so every step has the same shape.
    train_count = min(settings.batches * batch, len(train_set) // batch * batch or len(train_set))
    eval_count = min(settings.batches * batch, len(test_set))
    generator = torch.Generator().manual_seed(settings.seed)
    train_set = train_set.subset(torch.randperm(len(train_set), generator=generator)[:train_count])
    test_set = test_set.subset(torch.randperm(len(test_set), generator=generator)[:eval_count])
    return BenchImages(
        train_dir,
        test_dir,
        train_set.paths,
        test_set.paths,
        DeviceImages.from_image_set(train_set, device),
        DeviceImages.from_image_set(test_set, device),
    )


class BenchPasses:
    """One timed pass of training or evaluation for each pipeline, on the chosen images."""

    def __init__(self, images: BenchImages, device: torch.device, settings: BenchSettings):
        self.images, self.device, self.settings = images, device, settings
        self.config = TrainConfig()  # the report's Adam, lr 0.01, batch 128, rotation and flip
        self.state = new_state(
            self.config, images.train_data, settings.seed, compile=settings.compile
        )
        self.classic = classic_model(settings.image_size, device, images.train_data.num_classes)
        self.classic_optimizer = torch.optim.Adam(self.classic.parameters(), lr=self.config.lr)
        # The bare step's input: every batch of a pass, prepared on the device once, as is.
        precision = settings.precision
        self.train_batches = _prepared_batches(
            images.train_data, self.config.batch_size, precision, training=True
        )
        self.eval_batches = _prepared_batches(
            images.eval_data, eval_batch_size(settings.image_size), precision, training=False
        )
        self.fused = None
        if settings.fuse:
            # K trials of the project's recipe, seeds seed, seed + 1, ...; never compiled.
            self.fused = FusedTrainer(
                images.train_data,
                images.eval_data,
                slots=settings.fuse,
                batch_size=self.config.batch_size,
                precision=precision,
            )
            for slot in range(settings.fuse):
                self.fused.start(slot, self.config, settings.seed + slot)

    def train(self, pipeline: str, files: list[str] | None = None) -> None:
        precision = self.settings.precision
        if pipeline == "classic":
            loader = self._classic_loader(self.images.train_dir, files or self.images.train_files)
            classic_train(self.classic, self.classic_optimizer, loader, self.device)
        elif pipeline == "project":
            train_epoch(self.state, self.config, self.images.train_data, precision)
        elif pipeline == FUSED:
            self.fused.train_epoch()
        else:
            self.state.model.train()
            for images, labels in self.train_batches:
                training_step(self.state, self.config, images, labels, precision)

    def eval(self, pipeline: str, files: list[str] | None = None) -> None:
        precision = self.settings.precision
        if pipeline == "classic":
            loader = self._classic_loader(self.images.test_dir, files or self.images.eval_files)
            classic_evaluate(self.classic, loader, self.device)
        elif pipeline == "project":
            evaluate(self.state.model, self.images.eval_data, precision)
        elif pipeline == FUSED:
            self.fused.evaluate(self.images.eval_data)
        else:
            self._bare_eval()

    def warm_up(self) -> None:
        """Untimed first calls: kernel choice, allocation, torch.compile.

        One batch of the classic pipeline and of the bare step (every batch has its shape);
        whole passes of the others, whose heap of per-batch tensors grows in the first pass.
        """
        batch = self.config.batch_size
        self.train("classic", self.images.train_files[:batch])
        self.eval("classic", self.images.eval_files[:batch])
        self.train("project")
        training_step(self.state, self.config, *self.train_batches[0], self.settings.precision)
        self.eval("project")
        self.eval("bare")
        if self.fused is not None:
            self.train(FUSED)
            self.eval(FUSED)

    @torch.inference_mode()
    def _bare_eval(self) -> None:
        self.state.model.eval()
        for images, _ in self.eval_batches:
            with autocast(self.device, self.settings.precision):
                self.state.model(images)

    def _classic_loader(self, split_dir: Path, files: list[str]):
        return classic_loader(
            split_dir, self.settings.image_size, files=files, seed=self.settings.seed
        )


def _prepared_batches(
    data: DeviceImages, batch: int, precision: str, *, training: bool
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(model input, labels) of each batch of one pass over data, as train_epoch and evaluate
    cut them (a training pass leaves out a last batch of one image)."""
    count = len(data)
    steps = steps_per_epoch(count, batch) if training else -(-count // batch)
    starts = [step * batch for step in range(steps)]
    return [
        (
            model_input(to_float(data.images[start : start + batch]), precision),
            data.labels[start : start + batch],
        )
        for start in starts
    ]


def _timed(run: Callable[..., object], device: torch.device, *args: object) -> float:
    """Seconds that run(*args) keeps the device busy."""
    _synchronize(device)
    started = time.perf_counter()
    run(*args)
    _synchronize(device)
    return time.perf_counter() - started


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
