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

Memory that runs out in a fused epoch is no member's fault: the run goes on with half as many
trials at once, each going on from its last finished epoch's checkpoint (the same trial, not a
copy). A trial that runs out of memory alone fails with the reason, as it would unfused.

Every way a run ends reaches every member: a stop marks each running trial FAIL with the reason
and queues it again to resume from its own checkpoint, once the background has stored what it
was handed.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import gc
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from catdog.config import TrainConfig
from catdog.errors import CatdogError
from catdog.fused import FusedTrainer, MemberEpoch
from catdog.train import is_out_of_memory
from study.attrs import FAIL_REASON_ATTR, RESUME_ATTR, WORKER_ATTR
from study.optuna_private import heartbeat
from study.run.background import Background
from study.run.objective import Objective, trial_value
from study.run.plan import RunPlan
from study.run.reasons import (
    MEMORY_ADVICE,
    TrialFailed,
    epochs_stored,
    failure_reason,
    out_of_memory,
    stop_cause,
    stop_reason,
    store_error,
)
from study.run.reporter import EpochReporter
from study.run.signals import Stopped
from study.run.takeover import taken_over
from study.store.resume import CheckpointRefused, requeue
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
    # Put aside when memory ran out: its TrainState.state_dict() after its last finished
    # epoch, read back from its checkpoint (None: it had finished none).
    resume: dict[str, Any] | None = None


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
                        results = _epoch(trainer, splits.train.image_size)
                        if isinstance(results, str):  # memory ran out: `results` says where
                            width = _make_room(
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
        _conclude_ended(study, objective, concluding, callbacks, ending, errors=False)
        cause = stop_cause(stop)
        stopped = _stop_all(study, objective, _all(running, waiting), ending, cause, again=True)
        if isinstance(stop, Stopped):
            stop.trials.extend(stopped)
        raise
    except BaseException as error:
        _conclude_ended(study, objective, concluding, callbacks, ending, errors=False)
        if is_out_of_memory(error):  # not in an epoch: as a trial joined or rejoined
            count = len(running) + len(waiting) + len(concluding)
            cause = f"out of memory with {count} trials fused"
            _stop_all(study, objective, _all(running, waiting), ending, cause, again=True)
            raise FusedOutOfMemory(
                f"{cause}: use a smaller --fuse (the stopped trials are queued again and resume "
                "from their checkpoints)"
            ) from None
        _stop_all(
            study, objective, _all(running, waiting), ending, f"error: {type(error).__name__}"
        )
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


def _all(running: dict[tuple[int, int], Member], waiting: list[Member]) -> dict:
    """The running members and those put aside, for _stop_all."""
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


def _epoch(trainer: FusedTrainer, image_size: int) -> list[MemberEpoch] | str:
    """The trainer's next epoch; or, where memory ran out in it, where (the error itself, and
    the tensors its traceback holds, are dropped here)."""
    try:
        return trainer.run_epoch()
    except (RuntimeError, MemoryError) as error:
        if not is_out_of_memory(error):
            raise
        return out_of_memory(error, trainer.batch_size, image_size)


def _make_room(
    study: optuna.Study,
    objective: Objective,
    trainers: dict[int, FusedTrainer],
    running: dict[tuple[int, int], Member],
    waiting: list[Member],
    where: str,
    callbacks: list[TrialEnded],
) -> int:
    """Memory ran out in a fused epoch (`where`: out_of_memory's words): the fused networks
    are freed and the run goes on with half as many trials at once, each put aside to go on
    from its last finished epoch. No trial is at fault but one that ran out alone: it fails
    with the reason. Returns how many trials now train at once."""
    epochs = {
        member.trial.number: len(trainers[member.config.batch_size].member_state(slot).history)
        for (_, slot), member in running.items()
    }
    members = sorted(running.values(), key=lambda member: member.trial.number)
    running.clear()
    trainers.clear()  # the fused networks, and the members' half-trained epoch, go
    gc.collect()
    if objective.splits.train.images.device.type == "cuda":
        torch.cuda.empty_cache()  # what the failed epoch left cached, for a narrower network
    objective.background.drain()  # each member's last checkpoint is written
    if len(members) == 1:
        reason = f"{where}; {MEMORY_ADVICE}"
        fail = functools.partial(_fail, study, objective, members[0].trial, reason, callbacks)
        _conclude(study, objective, members[0], fail, {})
        return 1
    for member in members:
        try:
            member.resume = _last_epoch(objective, member, epochs[member.trial.number])
        except CheckpointRefused as error:
            cause = f"{where}, and its checkpoint cannot be read back ({error})"
            _stop_all(study, objective, {(-1, member.slot): member}, {}, cause, again=True)
            objective.progress.trial_lost(member.trial.number)
            continue
        waiting.append(member)
    waiting.sort(key=lambda member: member.trial.number)
    width = max(1, len(members) // 2)
    numbers = ", ".join(str(member.trial.number) for member in members)
    objective.progress.echo(
        f"{where} with {len(members)} trials fused: going on with at most {width} at a time "
        f"(trials {numbers} go on from their last finished epoch)"
    )
    return width


def _last_epoch(objective: Objective, member: Member, epochs: int) -> dict[str, Any] | None:
    """A member's TrainState.state_dict() after its `epochs` finished epochs, from its resume
    checkpoint (None for none); CheckpointRefused when that checkpoint is not of them."""
    info = member.trial.user_attrs.get(RESUME_ATTR)
    if epochs == 0:
        return None
    if info is None or info["epoch"] != epochs:
        raise CheckpointRefused(f"none of epoch {epochs}")
    return objective.resume_store.load(info, member.config, member.seed, objective.precision).state


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
        _tell(study, trial, TrialState.FAIL, None, callbacks)
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

    image_size = objective.splits.train.image_size
    if error is None:
        try:
            figures = objective.final_figures(result.state)
        except (RuntimeError, MemoryError) as scoring:  # the held-back test set, on the device
            if not is_out_of_memory(scoring):
                raise
            error = scoring

    def fail(reason: str) -> None:
        _fail(study, objective, trial, reason, callbacks)

    if error is None:
        model = result.state.model
        if objective.background.threaded:  # the thread reads no device memory
            model = copy.deepcopy(model).cpu()

        def conclude() -> None:
            try:
                objective.keep(trial, model, member.seed, figures)
            except OSError as error:  # a full disk fails the trial, as it does one alone
                reason = failure_reason(error, member.config, image_size)
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
        reason = failure_reason(error, member.config, image_size)
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


def _fail(
    study: optuna.Study,
    objective: Objective,
    trial: optuna.Trial,
    reason: str,
    callbacks: list[TrialEnded],
) -> None:
    """Tell a member's trial FAIL with `reason`; its checkpoints go."""
    trial.set_user_attr(FAIL_REASON_ATTR, reason)
    objective.resume_store.discard(trial)
    _tell(study, trial, TrialState.FAIL, None, callbacks)


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
                reason = stop_reason(cause, epochs_stored(trial, split), again=again)
                trial.set_user_attr(FAIL_REASON_ATTR, reason)
                study.tell(trial, state=TrialState.FAIL)
                stopped.append(trial.number)
                if again:
                    requeue(study, trial.number)
        member.heartbeat.close()
    return stopped
