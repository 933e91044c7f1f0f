"""What `catdog-study bench` measured: its settings, images/s per pipeline and phase, ratios.

See catdog/bench.py for how the three pipelines are timed. Figures are medians of the repeats;
the fastest repeat of each is kept too (on a shared machine other work only slows a pass down).
"""

from __future__ import annotations

import platform
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import torch

PIPELINES = ("classic", "project", "bare")


@dataclass(frozen=True)
class BenchSettings:
    image_size: int = 256
    batches: int = 4  # training batches of 128 per timed pass (capped by the split's size)
    repeats: int = 3  # timed passes of each pipeline
    precision: str = "fp32"  # resolved: "fp32" or "bf16" (the classic pipeline is always fp32)
    compile: bool = False  # torch.compile the project's and the bare step's model
    seed: int = 0


@dataclass
class PhaseResult:
    """Timings of one phase (training or evaluation) for the three pipelines."""

    images: int  # images per timed pass
    seconds: dict[str, list[float]] = field(default_factory=dict)  # pipeline -> per repeat

    def images_per_second(self, pipeline: str, *, best: bool = False) -> float:
        """Median over repeats, or the fastest repeat (a busy machine only ever slows a pass)."""
        times = self.seconds[pipeline]
        seconds = min(times) if best else statistics.median(times)
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
            "images_per_second": {k: round(self.images_per_second(k), 2) for k in PIPELINES},
            "images_per_second_each_repeat": {
                k: [round(self.images / s, 2) for s in self.seconds[k]] for k in PIPELINES
            },
            "project_over_classic": round(self.ratio("project", "classic"), 3),
            "project_over_bare": round(self.ratio("project", "bare"), 3),
            "fastest_repeat": {
                "images_per_second": {
                    k: round(self.images_per_second(k, best=True), 2) for k in PIPELINES
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
    warmup_seconds: float  # first pass of each pipeline, untimed: kernel choice, torch.compile
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


def progress_line(train: PhaseResult, evaluation: PhaseResult) -> str:
    """The last repeat's images/s of each pipeline, for the line printed after each repeat."""

    def last(phase: PhaseResult) -> str:
        return " / ".join(f"{phase.images / phase.seconds[k][-1]:.0f}" for k in PIPELINES)

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
        speeds = "".join(f"{phase.images_per_second(k):>10.1f}" for k in PIPELINES)
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
