"""What every worker of one `optimize` run needs, resolved once by the runner.

A plan holds values only (no open storage, no tensors), so it pickles into `--jobs` worker
processes; each worker opens what it needs from it once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from study.data.source import DataSource
from study.settings import DEFAULT_STORAGE_TIMEOUT_S
from study.space.dimensions import SearchSpace

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class RunPlan:
    space: SearchSpace
    source: DataSource  # which images, at which size
    device: torch.device  # resolved: an absent device was refused before the plan was made
    precision: str  # "fp32" or "bf16": the study's choice for this kind of device
    val_fraction: float  # > 0: judge on this held-out part of the training set
    seed: int  # trial n trains with seed + n; also the validation split's seed
    storage: str  # the storage URL
    study_name: str
    artifact_dir: str
    heartbeat: int  # seconds between a running trial's heartbeats
    grace_period: int  # seconds without a heartbeat before a trial is taken for dead
    pruner: str
    trials: int  # trials this run, over all workers
    jobs: int  # worker processes asked for
    first_worker: int  # the study's ordinal of worker 0; worker i seeds its sampler from +i
    timeout: float | None = None  # seconds, per worker: no new trial starts after it
    compile: bool = False  # torch.compile the model, once per worker process
    verbose: bool = False  # print every setting of each trial
    fuse: int = 1  # trials a worker trains at once, as one fused network (study.run.fused)
    # By fused width, which blocks' convolutions run split (measured by --fuse auto; else none:
    # the device's default, see catdog.fused.FusedTrainer).
    fuse_split: dict[int, tuple[bool, ...]] = field(default_factory=dict)
    objective: str = "accuracy"  # a trial's value: 1 - its last accuracy, or its last loss
    storage_timeout: float = DEFAULT_STORAGE_TIMEOUT_S  # s a call waits for a silent database

    @property
    def shares(self) -> list[int]:
        """Trials of each worker this run starts (see split_trials)."""
        return split_trials(self.trials, self.jobs)


def split_trials(trials: int, jobs: int) -> list[int]:
    """`trials` split as evenly as possible over `jobs` workers; workers with none left out."""
    shares = [trials // jobs + (i < trials % jobs) for i in range(jobs)]
    return [share for share in shares if share > 0]
