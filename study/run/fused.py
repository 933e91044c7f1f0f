"""`--fuse K`: a worker trains up to K trials at once, as one fused network (catdog.fused).

Trials are asked from Optuna (study.ask) as slots free up and told (study.tell) as they end.
Each keeps everything a trial trained alone has, at the same moments: its user attrs, curves,
trial.report and pruning after every epoch, resume checkpoint, model artifact and notes, and a
user attr naming its process and slot. A slot freed by a finished or pruned trial is taken by
the next asked trial at the next epoch. Trials share the batch size: a trial whose (searched)
batch size differs from the others' trains in a fused network of its own batch size, the
networks taking turns epoch by epoch, at most K trials in all.

Every way a run ends reaches every member: a stop marks each running trial FAIL with the reason
and queues it again to resume from its own checkpoint.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from catdog.config import TrainConfig
from catdog.errors import CatdogError
from catdog.fused import FusedTrainer, MemberEpoch
from study.attrs import FAIL_REASON_ATTR, WORKER_ATTR, loss_curve_attr
from study.optuna_private import heartbeat
from study.run.objective import (
    EpochReporter,
    Objective,
    TrialFailed,
    failure_reason,
    store_error,
    trial_value,
)
from study.run.plan import RunPlan
from study.run.signals import Stopped
from study.store.resume import requeue

TrialEnded = Callable[[optuna.Study, FrozenTrial], None]  # study.optimize's callbacks


class FusedOutOfMemory(CatdogError, RuntimeError):
    """The fused trials did not fit on the device together; the message says what to do."""


@dataclass
class Member:
    """A running trial in a slot of a fused trainer."""

    trial: optuna.Trial
    config: TrainConfig
    seed: int
    slot: int
    heartbeat: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)


def run_fused_trials(
    study: optuna.Study,
    objective: Objective,
    plan: RunPlan,
    trials: int,
    callbacks: list[TrialEnded],
) -> None:
    """Ask, train and tell `trials` trials, up to plan.fuse of them at once."""
    splits = objective.splits
    trainers: dict[int, FusedTrainer] = {}  # by batch size
    running: dict[tuple[int, int], Member] = {}  # (batch size, slot) -> its trial
    deadline = None if plan.timeout is None else time.monotonic() + plan.timeout
    asked = 0

    def trainer_for(batch_size: int) -> FusedTrainer:
        if batch_size not in trainers:
            trainers[batch_size] = FusedTrainer(
                splits.train,
                splits.eval,
                slots=plan.fuse,
                batch_size=batch_size,
                precision=plan.precision,
            )
        return trainers[batch_size]

    try:
        while True:
            while asked < trials and len(running) < plan.fuse and not _past(deadline):
                asked += 1
                _start(study, objective, trainer_for, running, callbacks)
            if not running:
                return
            for batch_size, trainer in trainers.items():
                if trainer.active_slots:
                    for result in trainer.run_epoch():
                        if result.ended:
                            _end(
                                study,
                                objective,
                                running[(batch_size, result.slot)],
                                result,
                                callbacks,
                            )
                            del running[(batch_size, result.slot)]
    except torch.OutOfMemoryError:
        count = len(running)
        cause = f"out of device memory with {count} trials fused"
        _stop_all(study, objective, list(running.values()), cause, again=True)
        raise FusedOutOfMemory(
            f"out of device memory with {count} trials fused: use a smaller --fuse (the "
            "stopped trials are queued again and resume from their checkpoints)"
        ) from None
    except KeyboardInterrupt as stop:
        cause = stop.trial_reason if isinstance(stop, Stopped) else "interrupted by the user"
        members = list(running.values())
        _stop_all(study, objective, members, cause, again=True)
        if isinstance(stop, Stopped):
            stop.trials.extend(member.trial.number for member in members)
        raise
    except BaseException as error:
        _stop_all(study, objective, list(running.values()), f"error: {type(error).__name__}")
        raise


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _start(
    study: optuna.Study,
    objective: Objective,
    trainer_for: Callable[[int], FusedTrainer],
    running: dict[tuple[int, int], Member],
    callbacks: list[TrialEnded],
) -> None:
    """Ask the next trial and put it in a free slot, or tell it FAIL when it cannot train."""
    with warnings.catch_warnings():
        # Optuna warns that heartbeats are meant for study.optimize; we run them ourselves.
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        trial = study.ask()
    stack = contextlib.ExitStack()
    stack.enter_context(heartbeat(study, trial))
    try:
        config, seed = objective.start(trial)
        resume = objective.resume_point(trial, config, seed)
    except TrialFailed:
        stack.close()
        _tell(study, trial, TrialState.FAIL, None, callbacks)
        return
    except KeyboardInterrupt as stop:  # before its first epoch: queued again, never lost
        stack.close()
        cause = stop.trial_reason if isinstance(stop, Stopped) else "interrupted by the user"
        trial.set_user_attr(FAIL_REASON_ATTR, f"{cause} after epoch 0; queued again to resume")
        study.tell(trial, state=TrialState.FAIL)
        requeue(study, trial.number)
        if isinstance(stop, Stopped):
            stop.trials.append(trial.number)
        raise
    except BaseException:
        stack.close()
        raise
    trainer = trainer_for(config.batch_size)
    slot = trainer.free_slots[0]
    trial.set_user_attr(WORKER_ATTR, {**objective.worker, "slot": slot})
    trainer.start(
        slot,
        config,
        seed,
        on_epoch=EpochReporter(objective, trial, config, seed),
        resume=resume.state if resume else None,
    )
    running[(config.batch_size, slot)] = Member(trial, config, seed, slot, stack)


def _end(
    study: optuna.Study,
    objective: Objective,
    member: Member,
    result: MemberEpoch,
    callbacks: list[TrialEnded],
) -> None:
    """Tell how a member's trial ended: finished, pruned, or failed with its reason."""
    trial, error = member.trial, result.error
    try:
        if error is None:
            objective.finish(trial, result.state, member.seed)
            objective.resume_store.discard(trial)
            objective.ending(trial, "complete")
            value = trial_value(result.metrics, objective.ranks_by)
            _tell(study, trial, TrialState.COMPLETE, value, callbacks)
        elif isinstance(error, optuna.TrialPruned):
            objective.resume_store.discard(trial)
            _tell(study, trial, TrialState.PRUNED, None, callbacks)
        elif isinstance(error, optuna.exceptions.UpdateFinishedTrialError):
            objective.progress.echo(
                f"trial {trial.number} was taken over by another worker: going on"
            )
            objective.progress.trial_lost(trial.number)
        else:
            reason = failure_reason(error, member.config)
            if reason is None:  # a bug: the run ends with its traceback, the trial says so
                store_error(trial, error)
                study.tell(trial, state=TrialState.FAIL)
                raise error
            trial.set_user_attr(FAIL_REASON_ATTR, reason)
            objective.resume_store.discard(trial)
            _tell(study, trial, TrialState.FAIL, None, callbacks)
    finally:
        member.heartbeat.close()


def _tell(
    study: optuna.Study,
    trial: optuna.Trial,
    state: TrialState,
    value: float | None,
    callbacks: list[TrialEnded],
) -> None:
    frozen = study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
    for callback in callbacks:
        callback(study, frozen)


def _stop_all(
    study: optuna.Study,
    objective: Objective,
    members: list[Member],
    cause: str,
    *,
    again: bool = False,
) -> None:
    """End every running member: FAIL with `cause` and the epoch it got to and, `again`,
    queued again to resume from its own checkpoint."""
    split = objective.splits.eval_split
    for member in members:
        trial = member.trial
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError, ValueError):
            epochs = len(trial.user_attrs.get(loss_curve_attr(split), []))
            suffix = "; queued again to resume" if again else ""
            trial.set_user_attr(FAIL_REASON_ATTR, f"{cause} after epoch {epochs}{suffix}")
            study.tell(trial, state=TrialState.FAIL)
            if again:
                requeue(study, trial.number)
        member.heartbeat.close()
