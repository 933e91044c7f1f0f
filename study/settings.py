"""Run settings and every default the command line shows, in one place.

The click options read their defaults from here (`default=`), and the code that runs a command
takes the same names, so a default is written once. This module imports nothing heavy: the
command line builds its help from it without loading torch or Optuna.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Where a study lives. Relative paths are relative to the folder the command runs in.
DEFAULT_STORAGE = "sqlite:///storage/catdog.db"
DEFAULT_STUDY_NAME = "catdog"
DEFAULT_ARTIFACT_DIR = "storage/artifacts"  # trial checkpoints; resume checkpoints in resume/
# Seconds a run waits for a study database that stops answering (a PostgreSQL restart or
# failover takes seconds); below the grace period, so that no live worker is taken for dead.
DEFAULT_STORAGE_TIMEOUT_S = 60
DEFAULT_REPORT_DIR = Path("storage/report")  # `report`'s plots and summary.md

# Data sets and the decoded-image cache.
REAL_DATA_DIR = Path("storage/data/dogs-cats-images")  # where `data download` puts Kaggle's set
SYNTHETIC_DIR = Path("storage/data/synthetic")
CACHE_DIR = Path("storage/cache")
REAL_IMAGE_SIZE = 256  # px, the report's size; the synthetic set has its own (64 px)

# The search.
DEFAULT_TRIALS = 40
DEFAULT_MAX_EPOCHS = 20  # upper end of the epochs dimension of the built-in spaces
SPACE_NAMES = ("report", "extended")  # built-in spaces; anything else is a TOML file
PRUNERS = ("median", "hyperband", "none")
DEFAULT_PRUNER = "median"  # chosen on replayed studies of real photos (benchmarks/search)
# What a study ranks its trials by: the last epoch's accuracy (as the error, 1 - accuracy,
# minimised, so that the pruner still compares losses, lower being better), or its loss. A new
# study ranks by accuracy since 2026-12-03: replayed studies of real photos found trials 1 to 4
# points more accurate by it (benchmarks/search); a study keeps the objective it started with.
OBJECTIVES = ("accuracy", "loss")
DEFAULT_OBJECTIVE = "accuracy"

# Workers. A running trial's worker writes a heartbeat every HEARTBEAT_INTERVAL_S seconds; a
# trial without one for the grace period is taken for dead and queued again. The grace period
# is GRACE_PER_HEARTBEAT heartbeats, at least GRACE_PERIOD_S; one under MIN_GRACE_PER_HEARTBEAT
# heartbeats would take live workers for dead (a heartbeat can be late on a busy machine).
HEARTBEAT_INTERVAL_S = 30
GRACE_PERIOD_S = 120
GRACE_PER_HEARTBEAT = 4
MIN_GRACE_PER_HEARTBEAT = 2

# `bench`: training batches of 128 per timed pass, and timed passes per pipeline.
BENCH_BATCHES = 4
BENCH_REPEATS = 3

# `dashboard`.
DASHBOARD_HOST = "127.0.0.1"
DASHBOARD_PORT = 8080


@dataclass(frozen=True)
class OptimizeSettings:
    """Every option of `catdog-study optimize`, as the user gave it (nothing resolved yet)."""

    trials: int = DEFAULT_TRIALS  # trials this command runs (the report's runs count among them)
    max_epochs: int = DEFAULT_MAX_EPOCHS
    pruner: str = DEFAULT_PRUNER
    objective: str | None = None  # one of OBJECTIVES; None: the study's, a new one's default
    space: str = "report"  # report, extended or a TOML space file
    allow_space_change: bool = False  # continue a study with a different (compatible) space
    data: str | None = None  # a folder, "synthetic", or None: real data if present
    image_size: int | None = None  # px; None: 256 for real data, the synthetic set's own size
    val_fraction: float = 0.0  # > 0: hold out this much of the training set for validation
    device: str = "auto"
    precision: str = "auto"
    seed: int = 0
    timeout: float | None = None  # seconds, per worker
    jobs: int = 1
    compile: bool = False  # torch.compile the model, once per worker process
    fuse: str = "auto"  # trials a worker trains at once: "auto" or a count (see study.run.fused)
    seed_configs: bool = True  # queue the report's four runs first
    enqueue_trial: tuple[int, ...] = ()  # re-run these trials' configs and seeds first
    enqueue_from: str | None = None  # the study holding them; None: this study
    storage: str = DEFAULT_STORAGE
    study_name: str = DEFAULT_STUDY_NAME
    artifact_dir: str = DEFAULT_ARTIFACT_DIR
    storage_timeout: float = DEFAULT_STORAGE_TIMEOUT_S  # seconds to wait for the database
    heartbeat: int = HEARTBEAT_INTERVAL_S  # seconds between a running trial's heartbeats
    grace_period: int | None = None  # seconds without heartbeat before a trial is dead

    @property
    def grace_period_s(self) -> int:
        """The grace period asked for, or the one that goes with the heartbeat."""
        return self.grace_period or default_grace_period(self.heartbeat)


def default_grace_period(heartbeat: int) -> int:
    """Seconds without a heartbeat after which a trial's worker is taken for dead."""
    return max(GRACE_PERIOD_S, GRACE_PER_HEARTBEAT * heartbeat)


def grace_period_problem(heartbeat: int, grace_period: int) -> str | None:
    """Why a grace period is too short for the heartbeat, or None when it will do."""
    shortest = MIN_GRACE_PER_HEARTBEAT * heartbeat
    if grace_period >= shortest:
        return None
    return (
        f"--grace-period {grace_period} is too short for --heartbeat {heartbeat}: a worker "
        f"writes a heartbeat every {heartbeat} s, so one alive but a little late would be taken "
        f"for dead; use at least {shortest} s, or leave --grace-period out "
        f"(then {default_grace_period(heartbeat)} s)"
    )
