"""The run loop of `--fuse K` (see __init__.py): trials are asked from Optuna (study.ask) as
slots free up and told (study.tell) as they end (members.py). A slot freed by a finished or
pruned trial is taken by the next asked trial at the next epoch. Trials share the batch size: a
trial whose (searched) batch size differs from the others' trains in a fused network of its own
batch size, the networks taking turns epoch by epoch, at most K trials in all.

On a GPU, what no epoch waits for (storing curves and checkpoints, drawing the curves PNG,
telling Optuna, rewriting the study note) runs on a thread beside the training loop
(background.py), and the fused network's width is rounded up to a power of two, so that
cudnn autotunes a few widths as the last trials end, not every one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import warnings
from collections.abc import Callable

import optuna
from optuna.trial import TrialState

from catdog.errors import CatdogError
from catdog.fused import FusedTrainer, MemberEpoch
from catdog.train import is_out_of_memory
from study.attrs import FAIL_REASON_ATTR, WORKER_ATTR
from study.optuna_private import heartbeat
from study.run.background import Background
from study.run.fused.members import Member, TrialEnded, conclude_ended, stop_all, tell
from study.run.fused.narrow import narrow, try_epoch
from study.run.objective import Objective
from study.run.plan import RunPlan
from study.run.reasons import TrialFailed, stop_cause, stop_reason, store_error
from study.run.reporter import EpochReporter
from study.run.signals import Stopped
from study.store.resume import requeue


class FusedOutOfMemory(CatdogError, RuntimeError):
    """The fused trials did not fit on the device together; the message says what to do."""


def run_fused_trials(
    study: optuna.Study,
    objective: Objective,
    plan: RunPlan,
    trials: int,
    callbacks: list[TrialEnded],
) -> None:
    """Ask, train and tell `trials` trials, up to plan.fuse of them at once."""
    background = Background.for_device(plan.device)
    objective = dataclasses.replace(objective, background=background)
    splits = objective.splits
    trainers: dict[int, FusedTrainer] = {}  # by batch size
    running: dict[tuple[int, int], Member] = {}  # (batch size, slot) -> its trial
    ending: dict[int, Member] = {}  # trial number -> a trial handed to `background` to end
    deadline = None if plan.timeout is None else time.monotonic() + plan.timeout
    asked = 0
    width = plan.fuse  # trials trained at once: lowered for the run when they did not fit
    waiting: list[Member] = []  # put aside when memory ran out: back first, as slots free

    def trainer_for(batch_size: int) -> FusedTrainer:
        if batch_size not in trainers:
            trainers[batch_size] = FusedTrainer(
                splits.train,
                splits.eval,
                slots=plan.fuse,
                batch_size=batch_size,
                precision=plan.precision,
                # A GPU autotunes each width's convolutions (cudnn.benchmark): a few widths.
                round_up=plan.device.type == "cuda",
                split_layers=plan.fuse_split,
            )
        return trainers[batch_size]

    # Members that ended in the last epoch: concluded once the slots they freed are filled, so
    # that the sampler sees them running at those asks, however far behind the background is.
    concluding: list[tuple[Member, MemberEpoch]] = []
    try:
        while True:
            background.check()
            background.settle()  # the asks see what the epochs before handed over, told
            while len(running) < width and (waiting or asked < trials and not _past(deadline)):
                if waiting:  # taken off the list once seated: never lost if that fails
                    _seat(objective, trainer_for, running, waiting[0])
                    waiting.pop(0)
                    continue
                asked += 1
                _start(study, objective, trainer_for, running, callbacks)
            # Trials that ended are kept as they ended: a stop waits until they are told.
            with objective.held_stops():
                conclude_ended(study, objective, concluding, callbacks, ending)
            if not running:
                background.wait()  # the last trials told, the study note rewritten
                return
            background.mark()  # this epoch's reports wait for what was handed over until now
            for batch_size, trainer in trainers.items():
                if trainer.active_slots:
                    # The members' reports hold a stop (EpochReporter) until every result
                    # is taken: none is cut between two members' reports.
                    with objective.held_stops():
                        results = try_epoch(trainer, splits.train.image_size)
                        if isinstance(results, str):  # memory ran out: `results` says where
                            width = narrow(
                                study, objective, trainers, running, waiting, results, callbacks
                            )
                            break
                        for result in results:
                            if result.ended:
                                member = running[(batch_size, result.slot)]
                                ending[member.trial.number] = member  # in one of the two
                                del running[(batch_size, result.slot)]
                                concluding.append((member, result))
    except KeyboardInterrupt as stop:
        # The trials that ended in the last epoch are kept as they ended; the others are
        # stopped and queued again.
        conclude_ended(study, objective, concluding, callbacks, ending, errors=False)
        cause = stop_cause(stop)
        stopped = stop_all(study, objective, _all(running, waiting), ending, cause, again=True)
        if isinstance(stop, Stopped):
            stop.trials.extend(stopped)
        raise
    except BaseException as error:
        conclude_ended(study, objective, concluding, callbacks, ending, errors=False)
        if is_out_of_memory(error):  # not in an epoch: as a trial joined or rejoined
            count = len(running) + len(waiting) + len(concluding)
            cause = f"out of memory with {count} trials fused"
            stop_all(study, objective, _all(running, waiting), ending, cause, again=True)
            raise FusedOutOfMemory(
                f"{cause}: use a smaller --fuse (the stopped trials are queued again and resume "
                "from their checkpoints)"
            ) from None
        stop_all(
            study, objective, _all(running, waiting), ending, f"error: {type(error).__name__}"
        )
        raise
    finally:
        background.close()


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _all(running: dict[tuple[int, int], Member], waiting: list[Member]) -> dict:
    """The running members and those put aside, for stop_all."""
    return {**running, **{(-1, member.trial.number): member for member in waiting}}


def _seat(
    objective: Objective,
    trainer_for: Callable[[int], FusedTrainer],
    running: dict[tuple[int, int], Member],
    member: Member,
) -> None:
    """Put a member in a free slot of the trainer of its batch size, from member.resume."""
    trial, config, seed = member.trial, member.config, member.seed
    trainer = trainer_for(config.batch_size)
    slot = trainer.free_slots[0]
    objective.store_attrs(trial, {WORKER_ATTR: {**objective.worker, "slot": slot}})
    reporter = EpochReporter(objective, trial, config, seed, fused=True)
    trainer.start(slot, config, seed, on_epoch=reporter, resume=member.resume)
    running[(config.batch_size, slot)] = dataclasses.replace(member, slot=slot, resume=None)


def _start(
    study: optuna.Study,
    objective: Objective,
    trainer_for: Callable[[int], FusedTrainer],
    running: dict[tuple[int, int], Member],
    callbacks: list[TrialEnded],
) -> None:
    """Ask the next trial and put it in a free slot, or tell it FAIL when it cannot train."""
    stops = objective.stops
    if stops is not None:
        stops.hold()  # a stop inside study.ask() left the asked trial RUNNING: raised below
    try:
        with warnings.catch_warnings():
            # Optuna warns that heartbeats are meant for study.optimize; we run them ourselves.
            warnings.filterwarnings(
                "ignore", message="Heartbeat of storage is supposed to be used"
            )
            trial = study.ask()
    finally:
        if stops is not None:
            stops.release()
    stack = contextlib.ExitStack()
    try:
        stack.enter_context(heartbeat(study, trial))
        if stops is not None:
            stops.check()
        config, seed = objective.start(trial)
        resume = objective.resume_point(trial, config, seed)
        member = Member(trial, config, seed, -1, stack, resume.state if resume else None)
        _seat(objective, trainer_for, running, member)
    except TrialFailed:
        stack.close()
        tell(study, trial, TrialState.FAIL, None, callbacks)
    except KeyboardInterrupt as stop:  # before its first epoch: queued again, never lost
        _unstarted(study, objective, trial, stack, running)
        trial.set_user_attr(FAIL_REASON_ATTR, stop_reason(stop_cause(stop), 0))
        study.tell(trial, state=TrialState.FAIL)
        requeue(study, trial.number)
        if isinstance(stop, Stopped):
            stop.trials.append(trial.number)
        raise
    except BaseException as error:
        _unstarted(study, objective, trial, stack, running)
        if is_out_of_memory(error):
            reason = "out of memory as it joined the fused trials; queued again to resume"
            trial.set_user_attr(FAIL_REASON_ATTR, reason)
            study.tell(trial, state=TrialState.FAIL)
            requeue(study, trial.number)
        else:
            store_error(trial, error)
            study.tell(trial, state=TrialState.FAIL)
        raise


def _unstarted(
    study: optuna.Study,
    objective: Objective,
    trial: optuna.Trial,
    stack: contextlib.ExitStack,
    running: dict[tuple[int, int], Member],
) -> None:
    """A trial stopped before its first epoch: out of `running`, its heartbeat closed and its
    attrs stored (a copy queued again keeps them), for the caller to tell."""
    for key, member in list(running.items()):
        if member.trial.number == trial.number:
            del running[key]
    stack.close()
    objective.background.drain()
