"""What `catdog-study bench` measured: its settings, images/s per pipeline and phase, ratios.

See catdog/bench.py for how the pipelines are timed. Figures are medians of the repeats; the
fastest repeat of each is kept too (on a shared machine other work only slows a pass down). The
fused pipeline's figure is the aggregate of its K members: K x images / seconds.
"""

from __future__ import annotations

import platform
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import torch

PIPELINES = ("classic", "project", "bare")
FUSED = "fused"  # timed besides PIPELINES with --fuse K


@dataclass(frozen=True)
class BenchSettings:
    image_size: int = 256
    batches: int = 4  # training batches of 128 per timed pass (capped by the split's size)
    repeats: int = 3  # timed passes of each pipeline
    precision: str = "fp32"  # resolved: "fp32" or "bf16" (the classic pipeline is always fp32)
    compile: bool = False  # torch.compile the project's and the bare step's model
    seed: int = 0
    fuse: int = 0  # members of the fused pipeline (catdog.fused); 0: not timed

    @property
    def pipelines(self) -> tuple[str, ...]:
        return PIPELINES + ((FUSED,) if self.fuse else ())


# The ratios reported, as (numerator, denominator); the fused ones only where it was timed.
RATIOS = (("project", "classic"), ("project", "bare"))
FUSED_RATIOS = ((FUSED, "bare"), (FUSED, "project"))


@dataclass
class PhaseResult:
    """Timings of one phase (training or evaluation) for each pipeline."""

    images: int  # images per timed pass (of each member, for the fused pipeline)
    seconds: dict[str, list[float]] = field(default_factory=dict)  # pipeline -> per repeat
    fused_members: int = 0  # K of the fused pipeline

    @property
    def pipelines(self) -> tuple[str, ...]:
        return tuple(k for k in (*PIPELINES, FUSED) if k in self.seconds)

    @property
    def ratios(self) -> tuple[tuple[str, str], ...]:
        return RATIOS + (FUSED_RATIOS if FUSED in self.seconds else ())

    def pass_images(self, pipeline: str) -> int:
        """Images one pass trains or evaluates: K x images for the fused pipeline."""
        return self.images * (self.fused_members if pipeline == FUSED else 1)

    def images_per_second(self, pipeline: str, *, best: bool = False) -> float:
        """Median over repeats, or the fastest repeat (a busy machine only ever slows a pass)."""
        times = self.seconds[pipeline]
        seconds = min(times) if best else statistics.median(times)
        return self.pass_images(pipeline) / seconds

    def ratio(self, numerator: str, denominator: str, *, best: bool = False) -> float:
        """numerator's images/s over denominator's: the median of the per-repeat ratios, or the
        ratio of the fastest repeats."""
        if best:
            return self.images_per_second(numerator, best=True) / self.images_per_second(
                denominator, best=True
            )
        pairs = zip(self.seconds[numerator], self.seconds[denominator], strict=True)
        scale = self.pass_images(numerator) / self.pass_images(denominator)
        return statistics.median(scale * theirs / ours for ours, theirs in pairs)

    def to_dict(self) -> dict:
        pipelines = self.pipelines
        values = {
            "images": self.images,
            "images_per_second": {k: round(self.images_per_second(k), 2) for k in pipelines},
            "images_per_second_each_repeat": {
                k: [round(self.pass_images(k) / s, 2) for s in self.seconds[k]] for k in pipelines
            },
        }
        values |= {f"{a}_over_{b}": round(self.ratio(a, b), 3) for a, b in self.ratios}
        fastest = {
            "images_per_second": {
                k: round(self.images_per_second(k, best=True), 2) for k in pipelines
            },
        }
        fastest |= {f"{a}_over_{b}": round(self.ratio(a, b, best=True), 3) for a, b in self.ratios}
        values["fastest_repeat"] = fastest
        if FUSED in self.seconds:
            values["fused_members"] = self.fused_members
        return values


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
        return " / ".join(
            f"{phase.pass_images(k) / phase.seconds[k][-1]:.0f}" for k in phase.pipelines
        )

    names = " / ".join(train.pipelines)
    return f"train {last(train)}, eval {last(evaluation)} img/s ({names})"


def format_result(result: BenchResult) -> str:
    """The figures as a small table, ratios last."""
    settings = result.settings
    phases = (("train", result.train), ("eval", result.eval))
    pipelines, ratios = result.train.pipelines, result.train.ratios
    ratio_names = [f"{a}/{b}" for a, b in ratios]
    lines = [
        f"{result.device_name}, {settings.image_size} px, {settings.precision}"
        f"{', torch.compile' if settings.compile else ''}; data: {result.data}",
        f"median of {settings.repeats} repeats, images/s"
        + (f" (fused: {settings.fuse} members together)" if settings.fuse else "")
        + ":",
        f"{'':6}"
        + "".join(f"{k:>10}" for k in pipelines)
        + "".join(f"{r:>{len(r) + 2}}" for r in ratio_names),
    ]
    for name, phase in phases:
        speeds = "".join(f"{phase.images_per_second(k):>10.1f}" for k in pipelines)
        columns = zip(ratios, ratio_names, strict=True)
        quotients = "".join(f"{phase.ratio(a, b):>{len(r) + 2}.2f}" for (a, b), r in columns)
        lines.append(f"{name:6}{speeds}{quotients}")
    fastest = ", ".join(
        f"{name} " + " / ".join(f"{phase.ratio(a, b, best=True):.2f}" for a, b in ratios)
        for name, phase in phases
    )
    lines.append(f"fastest repeats, {' / '.join(ratio_names)}: {fastest}")
    lines.append(
        f"({result.train.images} training and {result.eval.images} evaluation images per pass"
        f"{' and member' if settings.fuse else ''}; warm-up {result.warmup_seconds:.1f} s)"
    )
    return "\n".join(lines)
