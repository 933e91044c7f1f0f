"""After every epoch of a trial, alone or fused: its curves stored, its loss reported to the
pruner, a resume checkpoint written, and the trial stopped where the pruner says so.

Reporting and pruning happen at once; storing the curves and writing the checkpoint go through
the objective's background (at once, or on a thread beside a fused run's training loop).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Protocol

import optuna

from catdog.config import TrainConfig
from catdog.train import EpochMetrics, TrainState
from study.attrs import accuracy_attr, curve_attrs, is_prunable, loss_attr
from study.data.splits import DeviceSplits
from study.run.background import Background
from study.run.progress import Progress
from study.run.reasons import failure_reason
from study.run.signals import StopSignals
from study.store.resume import ResumeStore


class ObjectiveParts(Protocol):
    """What an EpochReporter uses of the Objective (objective.py) that trains its trial."""

    splits: DeviceSplits
    precision: str
    resume_store: ResumeStore
    progress: Progress
    stops: StopSignals | None
    background: Background

    def ending(self, trial: optuna.Trial, outcome: str) -> None: ...


@dataclass
class EpochReporter:
    """train()'s on_epoch for one trial: store its curves, report the loss to the pruner,
    checkpoint it for resuming, and stop it when the pruner says so."""

    objective: ObjectiveParts
    trial: optuna.Trial
    config: TrainConfig
    seed: int
    # A fused run's member: a stop is held from the first member's report until the run has
    # taken every member's result (see fused/loop.py), so that none is cut between two reports.
    fused: bool = False

    def __post_init__(self) -> None:
        self.prunable = is_prunable(self.trial.user_attrs)  # read once: a storage query
        self.failed: OSError | None = None  # a write on the background thread that failed

    def __call__(self, metrics: EpochMetrics, state: TrainState) -> None:
        objective, trial, config = self.objective, self.trial, self.config
        stops = objective.stops
        if stops is not None and self.fused:
            stops.hold()
        elif stops is not None:
            stops.check()
            if metrics.epoch >= config.epochs:
                # Trained to the end: the trial is kept and told as it ended; a stop from
                # here on is raised after that (Objective.__call__, worker.py's _run_trials).
                stops.hold()
        # What earlier epochs handed over is stored before this one reports (see background.py).
        objective.background.settle()
        if self.failed is not None:  # e.g. the disk was full for the last epoch's checkpoint
            raise self.failed
        split = objective.splits.eval_split
        attrs = {
            attr: [getattr(m, name) for m in state.history]
            for attr, name in curve_attrs(split).items()
        }
        attrs |= {loss_attr(split): metrics.eval_loss, accuracy_attr(split): metrics.eval_accuracy}
        # The last epoch's state is the finished model, kept as an artifact instead.
        checkpoint = None
        if metrics.epoch < config.epochs:
            checkpoint = objective.resume_store.snapshot(
                state, config, self.seed, objective.precision, copy=objective.background.threaded
            )
        job = functools.partial(self._store, attrs, checkpoint)
        objective.background.submit(job, key=trial.number)
        trial.report(metrics.eval_loss, metrics.epoch)
        objective.progress.epoch_finished(trial.number, config, metrics)
        if metrics.epoch < config.epochs and self.prunable and trial.should_prune():
            outcome = f"pruned after epoch {metrics.epoch} of {config.epochs}"
            job = functools.partial(objective.ending, trial, outcome)
            objective.background.submit(job, key=trial.number)
            raise optuna.TrialPruned(f"pruned after epoch {metrics.epoch}")

    def _store(self, attrs: dict[str, Any], checkpoint: dict[str, Any] | None) -> None:
        """The epoch's curves and figures on the trial, and its resume checkpoint."""
        try:
            for key, value in attrs.items():
                self.trial.set_user_attr(key, value)
            if checkpoint is not None:
                self.objective.resume_store.write(self.trial, checkpoint)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another worker took the trial over: trial.report says so to the trainer
        except OSError as error:
            if not self.objective.background.threaded or failure_reason(error, None) is None:
                raise
            # Written beside the training: the trial fails at its next epoch, as it would
            # have at this one alone (a full disk, the others going on).
            self.failed = error
