"""`--fuse K`: a worker trains up to K trials at once, as one fused network (catdog.fused).

Trials are asked from Optuna (study.ask) as slots free up and told (study.tell) as they end.
Each keeps everything a trial trained alone has, at the same moments: its user attrs, curves,
trial.report and pruning after every epoch, resume checkpoint, model artifact and notes, and a
user attr naming its process and slot. A slot freed by a finished or pruned trial is taken by
the next asked trial at the next epoch. Trials share the batch size: a trial whose (searched)
batch size differs from the others' trains in a fused network of its own batch size, the
networks taking turns epoch by epoch, at most K trials in all.

On a GPU, what no epoch waits for (storing curves and checkpoints, drawing the curves PNG,
telling Optuna, rewriting the study note) runs on a thread beside the training loop
(background.py), and the fused network's width is rounded up to a power of two, so that
cudnn autotunes a few widths as the last trials end, not every one.

Every way a run ends reaches every member: a stop marks each running trial FAIL with the reason
and queues it again to resume from its own checkpoint, once the background has stored what it
was handed.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
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
from study.run.background import Background
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
from study.run.takeover import taken_over
from study.store.resume import requeue
from study.store.studies import find_trial

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
    background = Background.for_device(plan.device)
    objective = dataclasses.replace(objective, background=background)
    splits = objective.splits
    trainers: dict[int, FusedTrainer] = {}  # by batch size
    running: dict[tuple[int, int], Member] = {}  # (batch size, slot) -> its trial
    ending: dict[int, Member] = {}  # trial number -> a trial handed to `background` to end
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
            while asked < trials and len(running) < plan.fuse and not _past(deadline):
                asked += 1
                _start(study, objective, trainer_for, running, callbacks)
            # Trials that ended are kept as they ended: a stop waits until they are told.
            with objective.held_stops():
                _conclude_ended(study, objective, concluding, callbacks, ending)
            if not running:
                background.wait()  # the last trials told, the study note rewritten
                return
            background.mark()  # this epoch's reports wait for what was handed over until now
            for batch_size, trainer in trainers.items():
                if trainer.active_slots:
                    # The members' reports hold a stop (EpochReporter) until every result
                    # is taken: none is cut between two members' reports.
                    with objective.held_stops():
                        for result in trainer.run_epoch():
                            if result.ended:
                                member = running[(batch_size, result.slot)]
                                ending[member.trial.number] = member  # in one of the two
                                del running[(batch_size, result.slot)]
                                concluding.append((member, result))
    except torch.OutOfMemoryError:
        count = len(running) + len(concluding)
        _conclude_ended(study, objective, concluding, callbacks, ending, errors=False)
        cause = f"out of device memory with {count} trials fused"
        _stop_all(study, objective, running, ending, cause, again=True)
        raise FusedOutOfMemory(
            f"out of device memory with {count} trials fused: use a smaller --fuse (the "
            "stopped trials are queued again and resume from their checkpoints)"
        ) from None
    except KeyboardInterrupt as stop:
        # The trials that ended in the last epoch are kept as they ended; the others are
        # stopped and queued again.
        _conclude_ended(study, objective, concluding, callbacks, ending, errors=False)
        cause = stop.trial_reason if isinstance(stop, Stopped) else "interrupted by the user"
        stopped = _stop_all(study, objective, running, ending, cause, again=True)
        if isinstance(stop, Stopped):
            stop.trials.extend(stopped)
        raise
    except BaseException as error:
        _conclude_ended(study, objective, concluding, callbacks, ending, errors=False)
        _stop_all(study, objective, running, ending, f"error: {type(error).__name__}")
        raise
    finally:
        background.close()


def _conclude_ended(
    study: optuna.Study,
    objective: Objective,
    concluding: list[tuple[Member, MemberEpoch]],
    callbacks: list[TrialEnded],
    ending: dict[int, Member],
    *,
    errors: bool = True,
) -> None:
    """Conclude (_end) each member that ended in the last epoch, once: taken off the list
    first. errors=False (a run that stops or fails): a member whose ending fails is left in
    `ending`, for _stop_all to mark."""
    while concluding:
        member, result = concluding.pop(0)
        try:
            _end(study, objective, member, result, callbacks, ending)
        except Exception:
            if errors:
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
        trainer = trainer_for(config.batch_size)
        slot = trainer.free_slots[0]
        objective.store_attrs(trial, {WORKER_ATTR: {**objective.worker, "slot": slot}})
        trainer.start(
            slot,
            config,
            seed,
            on_epoch=EpochReporter(objective, trial, config, seed, fused=True),
            resume=resume.state if resume else None,
        )
        running[(config.batch_size, slot)] = Member(trial, config, seed, slot, stack)
    except TrialFailed:
        stack.close()
        _tell(study, trial, TrialState.FAIL, None, callbacks)
    except KeyboardInterrupt as stop:  # before its first epoch: queued again, never lost
        _unstarted(study, objective, trial, stack, running)
        cause = stop.trial_reason if isinstance(stop, Stopped) else "interrupted by the user"
        trial.set_user_attr(FAIL_REASON_ATTR, f"{cause} after epoch 0; queued again to resume")
        study.tell(trial, state=TrialState.FAIL)
        requeue(study, trial.number)
        if isinstance(stop, Stopped):
            stop.trials.append(trial.number)
        raise
    except BaseException as error:
        _unstarted(study, objective, trial, stack, running)
        if isinstance(error, torch.OutOfMemoryError):
            reason = "out of device memory as it joined the fused trials; queued again to resume"
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


def _end(
    study: optuna.Study,
    objective: Objective,
    member: Member,
    result: MemberEpoch,
    callbacks: list[TrialEnded],
    ending: dict[int, Member],
) -> None:
    """Tell how a member's trial ended (finished, pruned, or failed with its reason), in the
    background but for what needs the device: scoring a held-back test set."""
    trial, error = member.trial, result.error
    if isinstance(error, optuna.exceptions.UpdateFinishedTrialError):
        objective.progress.echo(f"trial {trial.number} was taken over by another worker: going on")
        objective.progress.trial_lost(trial.number)
        member.heartbeat.close()
        ending.pop(trial.number, None)
        return

    def fail(reason: str) -> None:
        trial.set_user_attr(FAIL_REASON_ATTR, reason)
        objective.resume_store.discard(trial)
        _tell(study, trial, TrialState.FAIL, None, callbacks)

    if error is None:
        figures = objective.final_figures(result.state)
        model = result.state.model
        if objective.background.threaded:  # the thread reads no device memory
            model = copy.deepcopy(model).cpu()

        def conclude() -> None:
            try:
                objective.keep(trial, model, member.seed, figures)
            except OSError as error:  # a full disk fails the trial, as it does one alone
                reason = failure_reason(error, member.config)
                if reason is None:
                    raise
                fail(reason)
                return
            objective.resume_store.discard(trial)
            objective.ending(trial, "complete")
            value = trial_value(result.metrics, objective.ranks_by)
            _tell(study, trial, TrialState.COMPLETE, value, callbacks)

    elif isinstance(error, optuna.TrialPruned):

        def conclude() -> None:
            objective.resume_store.discard(trial)
            _tell(study, trial, TrialState.PRUNED, None, callbacks)

    else:
        reason = failure_reason(error, member.config)
        if reason is None:  # a bug: the run ends with its traceback, the trial says so
            objective.background.drain()
            store_error(trial, error)
            study.tell(trial, state=TrialState.FAIL)
            member.heartbeat.close()
            ending.pop(trial.number, None)
            raise error

        def conclude() -> None:
            fail(reason)

    job = functools.partial(_conclude, study, objective, member, conclude, ending)
    objective.background.submit(job, key=trial.number)


def _conclude(
    study: optuna.Study,
    objective: Objective,
    member: Member,
    conclude: Callable[[], None],
    ending: dict[int, Member],
) -> None:
    """Run in the background: end a member's trial, or say that another worker did. A trial
    whose ending failed stays in `ending`, for the run's error handling to mark it."""
    trial = member.trial
    try:
        conclude()
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError) as error:
        if not taken_over(study, trial.number, error):
            raise
        objective.progress.echo(f"trial {trial.number} was taken over by another worker: going on")
        objective.progress.trial_lost(trial.number)
    finally:
        member.heartbeat.close()
    ending.pop(trial.number, None)


def _is_finished(study: optuna.Study, trial: optuna.Trial) -> bool:
    stored = find_trial(study, trial.number)
    return stored is not None and stored.state.is_finished()


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
    running: dict[tuple[int, int], Member],
    ending: dict[int, Member],
    cause: str,
    *,
    again: bool = False,
) -> list[int]:
    """End every member still running: FAIL with `cause` and the epoch it got to and,
    `again`, queued again to resume from its own checkpoint. Returns their numbers.

    What the background was handed is done first (a trial's last curves and checkpoint, the
    trials that ended); a trial whose ending was skipped there (an earlier job failed) is
    stopped here with the running ones."""
    objective.background.drain()
    split = objective.splits.eval_split
    stopped = []
    for member in [*running.values(), *ending.values()]:
        trial = member.trial
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError, ValueError):
            if not _is_finished(study, trial):
                epochs = len(trial.user_attrs.get(loss_curve_attr(split), []))
                suffix = "; queued again to resume" if again else ""
                trial.set_user_attr(FAIL_REASON_ATTR, f"{cause} after epoch {epochs}{suffix}")
                study.tell(trial, state=TrialState.FAIL)
                stopped.append(trial.number)
                if again:
                    requeue(study, trial.number)
        member.heartbeat.close()
    return stopped
