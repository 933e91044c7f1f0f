"""Trials whose worker is gone: marked FAIL with the reason and queued again to resume.

Each trial records the process that trains it (host, process id, and on Linux the boot id and
the process's start time, so that a reused process id is not taken for the same process). A
worker on this machine whose process no longer exists is dead now: the next run to start, or
the next trial any worker starts, takes its trial over at once. A worker on another machine is
taken for dead when its heartbeat is older than the grace period; until then a run that ends
says when that will be. A trial with neither a worker nor a heartbeat (its worker was killed
while Optuna asked for it) is taken for dead a grace period after it was asked.
"""

from __future__ import annotations

import datetime
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from study.attrs import FAIL_REASON_ATTR, RESUME_ATTR, WORKER_ATTR
from study.optuna_private import (
    heartbeat_age_s,
    retry_system_attrs,
    set_running_trial_attr,
    stale_trial_numbers,
)
from study.store.resume import requeue
from study.store.storage import MAX_RETRIES
from study.store.studies import find_trial


@dataclass(frozen=True)
class WorkerProcess:
    host: str
    pid: int
    boot: str = ""  # Linux boot id: the same on one machine until it restarts; "" elsewhere
    started: str = ""  # the process's start, in clock ticks since boot; "" where unknown

    @classmethod
    def this(cls) -> WorkerProcess:
        pid = os.getpid()
        return cls(socket.gethostname(), pid, _boot_id(), _start_ticks(pid))

    @classmethod
    def from_attr(cls, value: Any) -> WorkerProcess | None:
        if not isinstance(value, dict):
            return None
        try:
            return cls(str(value["host"]), int(value["pid"]), value["boot"], value["started"])
        except (KeyError, TypeError, ValueError):
            return None

    def to_attr(self) -> dict[str, Any]:
        return {"host": self.host, "pid": self.pid, "boot": self.boot, "started": self.started}

    def describe(self) -> str:
        return f"process {self.pid} on {self.host}"

    def is_dead(self) -> bool:
        """True only when sure: this machine, this boot, and that process is gone (or its id
        now belongs to a process started later). Another machine's worker is never judged
        here: machines can share a name, so only its heartbeat tells."""
        here = WorkerProcess.this()
        if self.host != here.host or not self.boot or self.boot != here.boot:
            return False
        stat = _stat_fields(self.pid)
        # A zombie (exited, not yet reaped by its parent) is dead too.
        return stat is None or stat[19] != self.started or stat[0] == "Z"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> str:
    """Field 22 of /proc/PID/stat, the process's start in clock ticks; "" when none."""
    stat = _stat_fields(pid)
    return stat[19] if stat is not None else ""


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the parenthesised name (state first), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def take_over_dead_trials(
    study: optuna.Study, grace_period: int, echo: Callable[[str], None]
) -> list[int]:
    """Fail every RUNNING trial whose worker is dead and queue it again; returns their numbers.

    Another worker may do the same at the same moment: whoever marks the trial FAIL first
    queues it, the other leaves it.
    """
    stale = stale_trial_numbers(study)
    taken = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = WorkerProcess.from_attr(trial.user_attrs.get(WORKER_ATTR))
        where = f" ({worker.describe()})" if worker else ""
        if worker is not None and worker.is_dead():
            cause = f"its worker{where} ended without finishing it"
        elif trial.number in stale:
            cause = f"its worker{where} sent no heartbeat for {grace_period} s"
        elif worker is None and _never_started(study, trial, grace_period):
            cause = (
                f"no worker recorded itself on it nor sent a heartbeat in {grace_period} s "
                "(its worker ended while Optuna asked for it)"
            )
        else:
            continue
        if _fail_and_queue(study, trial, cause, echo):
            taken.append(trial.number)
    return taken


def _never_started(study: optuna.Study, trial: FrozenTrial, grace_period: int) -> bool:
    """A worker starts a trial's heartbeat and records itself on the trial right after
    study.ask() returns it; a trial asked longer than the grace period ago with neither was
    left by a worker killed inside study.ask()."""
    if trial.datetime_start is None or heartbeat_age_s(study, trial) is not None:
        return False
    # Optuna stamps datetime_start with the asking machine's local clock, as datetime.now().
    return (datetime.datetime.now() - trial.datetime_start).total_seconds() > grace_period


def _fail_and_queue(
    study: optuna.Study, trial: FrozenTrial, cause: str, echo: Callable[[str], None]
) -> bool:
    retries = len(retry_system_attrs(trial)["retry_history"]) - 1
    epoch = trial.user_attrs.get(RESUME_ATTR, {}).get("epoch")
    resume = f"to resume after epoch {epoch}" if epoch else "to start again"
    again = retries < MAX_RETRIES
    outcome = f"queued again {resume}" if again else f"not queued again: {retries} retries"
    reason = f"{cause}; {outcome}"
    try:
        set_running_trial_attr(study, trial, FAIL_REASON_ATTR, reason)
        study.tell(trial.number, state=TrialState.FAIL)
    except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
        return False  # another worker took it over first
    if again:
        requeue(study, trial.number)
    echo(f"trial {trial.number}: {reason}")
    return True


def describe_still_running(study: optuna.Study, grace_period: int) -> list[str]:
    """A line for each trial left RUNNING: who trains it and when it is taken over if it died."""
    lines = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = WorkerProcess.from_attr(trial.user_attrs.get(WORKER_ATTR))
        where = f" in {worker.describe()}" if worker else ""
        age = heartbeat_age_s(study, trial)
        when = f"{grace_period} s after its last heartbeat"
        if age is not None:
            when = f"in {max(0, grace_period - age):.0f} s (last heartbeat {age:.0f} s ago)"
        lines.append(
            f"trial {trial.number} is still RUNNING{where}: if that worker is gone, the first "
            f"run started {when} queues it again to resume"
        )
    return lines


def taken_over(study: optuna.Study, number: int | None, error: Exception) -> bool:
    """True when `error` says that trial `number` was ended by someone else while it ran:
    Optuna refuses to tell it ("Cannot tell a FAIL trial.") or to store anything on it."""
    refused = isinstance(error, optuna.exceptions.UpdateFinishedTrialError) or str(
        error
    ).startswith("Cannot tell a ")
    trial = find_trial(study, number) if number is not None else None
    return refused and trial is not None and trial.state.is_finished()
