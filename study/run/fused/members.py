"""The members of a fused run, each a running trial in a slot, and how each ends.

A member that ended in an epoch (finished, pruned, or failed with its reason) is told
(study.tell) in the background (background.py), but for what needs the device: scoring a
held-back test set. A member another worker took over is let go with a line that says so.

Every way a run ends reaches every member: a stop marks each running trial FAIL with the reason
and queues it again to resume from its own checkpoint, once the background has stored what it
was handed.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from catdog.config import TrainConfig
from catdog.fused import MemberEpoch
from catdog.train import is_out_of_memory
from study.attrs import FAIL_REASON_ATTR
from study.run.objective import Objective, trial_value
from study.run.reasons import epochs_stored, failure_reason, stop_reason, store_error
from study.run.takeover import taken_over
from study.store.resume import requeue
from study.store.studies import find_trial

TrialEnded = Callable[[optuna.Study, FrozenTrial], None]  # study.optimize's callbacks


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


def conclude_ended(
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
    `ending`, for stop_all to mark."""
    while concluding:
        member, result = concluding.pop(0)
        try:
            _end(study, objective, member, result, callbacks, ending)
        except Exception:
            if errors:
                raise


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
        _lost(objective, trial)
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

    if error is None:
        model = result.state.model
        if objective.background.threaded:  # the thread reads no device memory
            model = copy.deepcopy(model).cpu()

        def end() -> None:
            try:
                objective.keep(trial, model, member.seed, figures)
            except OSError as error:  # a full disk fails the trial, as it does one alone
                reason = failure_reason(error, member.config, image_size)
                if reason is None:
                    raise
                fail(study, objective, trial, reason, callbacks)
                return
            objective.resume_store.discard(trial)
            objective.ending(trial, "complete")
            value = trial_value(result.metrics, objective.ranks_by)
            tell(study, trial, TrialState.COMPLETE, value, callbacks)

    elif isinstance(error, optuna.TrialPruned):

        def end() -> None:
            objective.resume_store.discard(trial)
            tell(study, trial, TrialState.PRUNED, None, callbacks)

    else:
        reason = failure_reason(error, member.config, image_size)
        if reason is None:  # a bug: the run ends with its traceback, the trial says so
            objective.background.drain()
            store_error(trial, error)
            study.tell(trial, state=TrialState.FAIL)
            member.heartbeat.close()
            ending.pop(trial.number, None)
            raise error

        def end() -> None:
            fail(study, objective, trial, reason, callbacks)

    job = functools.partial(conclude, study, objective, member, end, ending)
    objective.background.submit(job, key=trial.number)


def conclude(
    study: optuna.Study,
    objective: Objective,
    member: Member,
    end: Callable[[], None],
    ending: dict[int, Member],
) -> None:
    """Run in the background: end a member's trial (`end`), or say that another worker did. A
    trial whose ending failed stays in `ending`, for the run's error handling to mark it."""
    trial = member.trial
    try:
        end()
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError) as error:
        if not taken_over(study, trial.number, error):
            raise
        _lost(objective, trial)
    finally:
        member.heartbeat.close()
    ending.pop(trial.number, None)


def _lost(objective: Objective, trial: optuna.Trial) -> None:
    """Another worker took the trial over: said so, and the run goes on without it."""
    objective.progress.echo(f"trial {trial.number} was taken over by another worker: going on")
    objective.progress.trial_lost(trial.number)


def fail(
    study: optuna.Study,
    objective: Objective,
    trial: optuna.Trial,
    reason: str,
    callbacks: list[TrialEnded],
) -> None:
    """Tell a member's trial FAIL with `reason`; its checkpoints go."""
    trial.set_user_attr(FAIL_REASON_ATTR, reason)
    objective.resume_store.discard(trial)
    tell(study, trial, TrialState.FAIL, None, callbacks)


def tell(
    study: optuna.Study,
    trial: optuna.Trial,
    state: TrialState,
    value: float | None,
    callbacks: list[TrialEnded],
) -> None:
    """study.tell, then the callbacks study.optimize would call with the trial as told."""
    frozen = study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
    for callback in callbacks:
        callback(study, frozen)


def stop_all(
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


def _is_finished(study: optuna.Study, trial: optuna.Trial) -> bool:
    stored = find_trial(study, trial.number)
    return stored is not None and stored.state.is_finished()
