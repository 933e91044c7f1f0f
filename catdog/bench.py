"""Images per second of the classic pipeline, this project's epoch and the bare step, in one run.

Three ways to train (and to evaluate) the same network on the same split, on one device:

  classic  the report's pipeline (catdog.classic): PIL decode and transforms of every image on
           every pass, DataLoader batches of 128, fp32 model in the default memory format
  project  catdog.train's own epoch: the split's cached uint8 tensor on the device, batches
           gathered by index and augmented there, channels_last, the chosen precision
  bare     the same model, precision and memory format stepping on one batch already prepared
           on the device: no gathering, no augmentation, no metrics; the model's own compute
           cost and so the limit of the project's figure

Each is timed `repeats` times, the three interleaved (in alternating order) so that a busy
phase of a shared machine slows all of them alike. A figure is the median of its repeats; a
ratio is the median of the per-repeat ratios. The fastest repeat of each kind is reported too: on
a shared machine other work only ever slows a pass down. Nothing here asserts a speed.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch

from catdog.augment import to_float
from catdog.cache import ImageSet, load_split
from catdog.classic import (
    classic_evaluate,
    classic_loader,
    classic_model,
    classic_train,
)
from catdog.config import TrainConfig
from catdog.dataset import SPLITS, find_dataset_root
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

KINDS = ("classic", "project", "bare")


@dataclass(frozen=True)
class BenchSettings:
    image_size: int = 256
    batches: int = 4  # training batches of 128 per timed pass (capped by the split's size)
    repeats: int = 3  # timed passes of each kind
    precision: str = "fp32"  # resolved: "fp32" or "bf16" (the classic pipeline is always fp32)
    compile: bool = False  # torch.compile the project's and the bare step's model
    seed: int = 0


@dataclass
class PhaseResult:
    """Timings of one phase (training or evaluation) for the three kinds."""

    images: int  # images per timed pass
    seconds: dict[str, list[float]] = field(default_factory=dict)  # kind -> one per repeat

    def images_per_second(self, kind: str, *, best: bool = False) -> float:
        """Median over repeats, or the fastest repeat (a busy machine only ever slows a pass)."""
        seconds = min(self.seconds[kind]) if best else statistics.median(self.seconds[kind])
        return self.images / seconds

    def ratio(self, numerator: str, denominator: str, *, best: bool = False) -> float:
        """numerator's images/s over denominator's: the median of the per-repeat ratios, or the
        ratio of the fastest repeats."""
        if best:
            return self.images_per_second(numerator, best=True) / self.images_per_second(
                denominator, best=True
            )
        pairs = zip(self.seconds[numerator], self.seconds[denominator], strict=True)
        return statistics.median(theirs / ours for ours, theirs in pairs)

    def to_dict(self) -> dict:
        return {
            "images": self.images,
            "images_per_second": {k: round(self.images_per_second(k), 2) for k in KINDS},
            "images_per_second_each_repeat": {
                k: [round(self.images / s, 2) for s in self.seconds[k]] for k in KINDS
            },
            "project_over_classic": round(self.ratio("project", "classic"), 3),
            "project_over_bare": round(self.ratio("project", "bare"), 3),
            "fastest_repeat": {
                "images_per_second": {
                    k: round(self.images_per_second(k, best=True), 2) for k in KINDS
                },
                "project_over_classic": round(self.ratio("project", "classic", best=True), 3),
                "project_over_bare": round(self.ratio("project", "bare", best=True), 3),
            },
        }


@dataclass
class BenchResult:
    settings: BenchSettings
    device: str
    device_name: str
    data: str
    warmup_seconds: float  # first pass of each kind, untimed: kernel choice, torch.compile
    train: PhaseResult
    eval: PhaseResult
    torch_version: str = torch.__version__
    threads: int = field(default_factory=torch.get_num_threads)
    date: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))

    def to_dict(self) -> dict:
        values = asdict(self)
        values.update(train=self.train.to_dict(), eval=self.eval.to_dict())
        values["warmup_seconds"] = round(self.warmup_seconds, 1)
        return values


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads"


def run_bench(
    data_root: Path,
    description: str,
    device: torch.device,
    settings: BenchSettings,
    *,
    cache_dir: Path | None,
    echo: Callable[[str], None] = print,
) -> BenchResult:
    """Time the three kinds on the data set at data_root; see the module docstring."""
    root = find_dataset_root(data_root)
    train_dir, test_dir = (root / split for split in SPLITS)
    config = TrainConfig()  # the report's Adam, lr 0.01, batch 128, rotation and flip
    batch = config.batch_size
    train_set = load_split(train_dir, settings.image_size, cache_dir)
    test_set = load_split(test_dir, settings.image_size, cache_dir)
    # Whole batches only where the split allows, so every step has the same shape.
    train_count = min(settings.batches * batch, len(train_set) // batch * batch or len(train_set))
    eval_count = min(settings.batches * batch, len(test_set))
    # The same randomly chosen images for the classic pipeline (as files) and the others.
    generator = torch.Generator().manual_seed(settings.seed)
    train_set = _choose(
        train_set, torch.randperm(len(train_set), generator=generator)[:train_count]
    )
    test_set = _choose(test_set, torch.randperm(len(test_set), generator=generator)[:eval_count])
    train_data = DeviceImages.from_image_set(train_set, device)
    eval_data = DeviceImages.from_image_set(test_set, device)
    train_files, eval_files = train_set.paths, test_set.paths

    state = new_state(config, train_data, settings.seed, compile=settings.compile)
    model, precision = state.model, settings.precision
    classic = classic_model(settings.image_size, device)
    classic_optimizer = torch.optim.Adam(classic.parameters(), lr=config.lr)
    # The bare step's input: every batch of a pass, prepared on the device once, un-augmented.
    train_batches = _prepared_batches(train_data, batch, precision, training=True)
    eval_batches = _prepared_batches(
        eval_data, eval_batch_size(settings.image_size), precision, training=False
    )

    def classic_train_pass(files: list[str]) -> None:
        loader = classic_loader(train_dir, settings.image_size, files=files, seed=settings.seed)
        classic_train(classic, classic_optimizer, loader, device)

    def classic_eval_pass(files: list[str]) -> None:
        loader = classic_loader(test_dir, settings.image_size, files=files, seed=settings.seed)
        classic_evaluate(classic, loader, device)

    def bare_train_pass() -> None:
        model.train()
        for images, labels in train_batches:
            training_step(state, config, images, labels, precision)

    @torch.inference_mode()
    def bare_eval_pass() -> None:
        model.eval()
        for images, _ in eval_batches:
            with autocast(device, precision):
                model(images)

    train_passes = {
        "classic": lambda: classic_train_pass(train_files),
        "project": lambda: train_epoch(state, config, train_data, precision),
        "bare": bare_train_pass,
    }
    eval_passes = {
        "classic": lambda: classic_eval_pass(eval_files),
        "project": lambda: evaluate(model, eval_data, precision),
        "bare": bare_eval_pass,
    }
    echo(
        f"warming up on {device} ({device_name(device)}): {settings.image_size} px, "
        f"{precision}{', torch.compile' if settings.compile else ''}"
    )
    started = time.perf_counter()
    # One batch of the classic pipeline and of the bare step (every batch has its shape);
    # whole passes of the others, whose heap of per-batch tensors grows in the first pass.
    classic_train_pass(train_files[:batch])
    classic_eval_pass(eval_files[:batch])
    train_passes["project"]()
    training_step(state, config, *train_batches[0], precision)
    eval_passes["project"]()
    eval_passes["bare"]()
    _synchronize(device)
    warmup = time.perf_counter() - started

    trained = sum(len(labels) for _, labels in train_batches)  # a lone last image is left out
    train_result, eval_result = PhaseResult(trained), PhaseResult(eval_count)
    for repeat in range(settings.repeats):
        order = KINDS if repeat % 2 == 0 else KINDS[::-1]
        for phase, passes in ((train_result, train_passes), (eval_result, eval_passes)):
            for kind in order:
                phase.seconds.setdefault(kind, []).append(_timed(passes[kind], device))
        echo(f"repeat {repeat + 1}/{settings.repeats}: {_summary(train_result, eval_result)}")
    return BenchResult(
        settings, str(device), device_name(device), description, warmup, train_result, eval_result
    )


def _choose(image_set: ImageSet, chosen: torch.Tensor) -> ImageSet:
    return ImageSet(
        image_set.images[chosen],
        image_set.labels[chosen],
        [image_set.paths[i] for i in chosen.tolist()],
        skipped=[],
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


def _timed(run: Callable[[], object], device: torch.device) -> float:
    _synchronize(device)
    started = time.perf_counter()
    run()
    _synchronize(device)
    return time.perf_counter() - started


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _summary(train: PhaseResult, evaluation: PhaseResult) -> str:
    def last(phase: PhaseResult) -> str:
        return " / ".join(f"{phase.images / phase.seconds[k][-1]:.0f}" for k in KINDS)

    return f"train {last(train)}, eval {last(evaluation)} img/s (classic / project / bare)"


def format_result(result: BenchResult) -> str:
    """The figures as a small table, ratios last."""
    settings = result.settings
    lines = [
        f"{result.device_name}, {settings.image_size} px, {settings.precision}"
        f"{', torch.compile' if settings.compile else ''}; data: {result.data}",
        f"median of {settings.repeats} repeats, images/s:",
        f"{'':6}{'classic':>10}{'project':>10}{'bare':>10}{'project/classic':>17}"
        f"{'project/bare':>14}",
    ]
    for name, phase in (("train", result.train), ("eval", result.eval)):
        speeds = "".join(f"{phase.images_per_second(k):>10.1f}" for k in KINDS)
        lines.append(
            f"{name:6}{speeds}{phase.ratio('project', 'classic'):>17.2f}"
            f"{phase.ratio('project', 'bare'):>14.2f}"
        )
    fastest = ", ".join(
        f"{name} {phase.ratio('project', 'classic', best=True):.2f} / "
        f"{phase.ratio('project', 'bare', best=True):.2f}"
        for name, phase in (("train", result.train), ("eval", result.eval))
    )
    lines.append(f"fastest repeats, project/classic / project/bare: {fastest}")
    lines.append(
        f"({result.train.images} training and {result.eval.images} evaluation images per pass; "
        f"warm-up {result.warmup_seconds:.1f} s)"
    )
    return "\n".join(lines)
