"""Memory that runs out in a fused epoch is no member's fault: the run goes on with half as many
trials at once, each going on from its last finished epoch's checkpoint (the same trial, not a
copy). A trial that runs out of memory alone fails with the reason, as it would unfused.
"""

from __future__ import annotations

import functools
import gc
from typing import Any

import optuna
import torch

from catdog.fused import FusedTrainer, MemberEpoch
from catdog.train import is_out_of_memory
from study.attrs import RESUME_ATTR
from study.run.fused.members import Member, TrialEnded, conclude, fail, stop_all
from study.run.objective import Objective
from study.run.reasons import MEMORY_ADVICE, out_of_memory
from study.store.resume import CheckpointRefused


def try_epoch(trainer: FusedTrainer, image_size: int) -> list[MemberEpoch] | str:
    """The trainer's next epoch; or, where memory ran out in it, where (the error itself, and
    the tensors its traceback holds, are dropped here)."""
    try:
        return trainer.run_epoch()
    except (RuntimeError, MemoryError) as error:
        if not is_out_of_memory(error):
            raise
        return out_of_memory(error, trainer.batch_size, image_size)


def narrow(
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
        end = functools.partial(fail, study, objective, members[0].trial, reason, callbacks)
        conclude(study, objective, members[0], end, {})
        return 1
    for member in members:
        try:
            member.resume = _last_epoch(objective, member, epochs[member.trial.number])
        except CheckpointRefused as error:
            cause = f"{where}, and its checkpoint cannot be read back ({error})"
            stop_all(study, objective, {(-1, member.slot): member}, {}, cause, again=True)
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
