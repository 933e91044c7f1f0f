"""Optuna's RDB storage, made to wait for a database that stops answering for a while.

A PostgreSQL restart or failover, or a short network cut, drops every connection: Optuna's
storage then fails its next call, and study.optimize buries that under hundreds of lines of
traceback with the trial left RUNNING. Here every storage call that fails because the server
did not answer is tried again, after 0.5, 1, 2, 4, 8, 8, ... s, for up to `timeout_s` seconds
(--storage-timeout), with one line said when the waiting starts. SQLAlchemy's pool_pre_ping
(set in storage.py) replaces the dead connections once the server is back. Past the time the
call raises StorageUnreachable; the trial stays RUNNING, and the next run takes it over (at
once on this machine, where its worker process is then gone). A full database disk raises
StorageFull at once: waiting would not free it.

A call that failed may have reached the server before the connection dropped; Optuna's calls
are either reads or writes of one row that can be made twice (attrs, reports, heartbeats),
except creating a trial, which could leave one extra RUNNING trial with no worker: it is taken
over a grace period later, as any trial whose worker is gone.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from optuna.storages import RDBStorage

from study.store.failures import (
    StorageError,
    StorageUnreachable,
    database_error,
    full_database,
    is_full,
    is_unreachable,
    reason_of,
)

FIRST_WAIT_S = 0.5  # then doubled after each failed try, up to MAX_WAIT_S
MAX_WAIT_S = 8.0
# Calls that do not touch the database.
LOCAL_CALLS = frozenset(
    {"remove_session", "get_heartbeat_interval", "get_heartbeat_stale_trial_callback"}
)


def say_on_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class RetryingRDBStorage(RDBStorage):
    """RDBStorage whose calls wait up to `timeout_s` seconds for an unreachable database.

    where: the URL as shown to users (no password); database: the SQLite file, None for a
    server; say: prints the line that says the run waits (stderr unless given).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float,
        where: str,
        database: str | None = None,
        say: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> None:
        self.timeout_s, self.where, self.database = timeout_s, where, database
        self.say = say or say_on_stderr
        self._new_outage_state()
        super().__init__(url, **kwargs)

    def _new_outage_state(self) -> None:
        self._lock = threading.Lock()
        self._calling = threading.local()  # inside a storage call (no retries within retries)
        self._waiting = False  # the waiting line was said for the outage going on
        self._gave_up = False  # an outage outlasted timeout_s: later calls try once

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        for name in ("_lock", "_calling", "say"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        self._new_outage_state()
        self.say = say_on_stderr
        super().__setstate__(state)

    def record_heartbeat(self, trial_id: int) -> None:
        """A missed heartbeat is no error: it runs on Optuna's own thread, where an error would
        end the heartbeats with a traceback; the trial's own next call reports the outage."""
        with contextlib.suppress(StorageError):
            self._retrying(RDBStorage.record_heartbeat, trial_id)

    def _retrying(self, call: Callable, *args: Any, **kwargs: Any) -> Any:
        if getattr(self._calling, "inside", False):  # a call made by another one: it retries
            return call(self, *args, **kwargs)
        self._calling.inside = True
        try:
            return self._call_until_answered(call, args, kwargs)
        finally:
            self._calling.inside = False

    def _call_until_answered(self, call: Callable, args: tuple, kwargs: dict) -> Any:
        deadline, wait = None, FIRST_WAIT_S
        while True:
            try:
                result = call(self, *args, **kwargs)
            except Exception as error:
                failed = database_error(error)
                if failed is not None and is_full(failed):
                    raise full_database(self.where, self.database, failed) from None
                if failed is None or not is_unreachable(failed, self._backend):
                    raise
                now = time.monotonic()
                if deadline is None:  # after an outage that outlasted the wait: one try
                    deadline = now if self._gave_up else now + self.timeout_s
                if now >= deadline:
                    self._gave_up = True
                    raise self._unreachable(failed) from None
                self._announce(failed)
                time.sleep(min(wait, deadline - now))
                wait = min(2 * wait, MAX_WAIT_S)
                continue
            with self._lock:
                self._waiting = self._gave_up = False
            return result

    @property
    def _backend(self) -> str:
        return self.engine.url.get_backend_name()

    def _announce(self, error: Exception) -> None:
        with self._lock:
            if self._waiting:
                return
            self._waiting = True
        self.say(
            f"the study database {self.where} does not answer ({reason_of(error)}): waiting up "
            f"to {self.timeout_s:g} s for it (--storage-timeout)"
        )

    def _unreachable(self, error: Exception) -> StorageUnreachable:
        return StorageUnreachable(
            f"the study database {self.where} did not answer for {self.timeout_s:g} s "
            f"({reason_of(error)}): the next run takes over a trial this one left running; "
            "once the database answers, run the same command again (every finished trial is "
            "kept)"
        )


def _retried(name: str) -> Callable:
    """RDBStorage's method `name`, tried until answered (looked up at each call)."""

    @functools.wraps(getattr(RDBStorage, name))
    def retried(self: RetryingRDBStorage, *args: Any, **kwargs: Any) -> Any:
        return self._retrying(getattr(RDBStorage, name), *args, **kwargs)

    return retried


def _database_calls() -> list[str]:
    """Every method of RDBStorage that reads or writes the database, with Optuna's private
    stale-trial query (study/optuna_private.py uses it)."""
    return [
        name
        for name, value in vars(RDBStorage).items()
        if callable(value)
        and (not name.startswith("_") or name == "_get_stale_trial_ids")
        and name not in LOCAL_CALLS
    ]


for _name in _database_calls():
    if _name not in vars(RetryingRDBStorage):  # record_heartbeat has its own
        setattr(RetryingRDBStorage, _name, _retried(_name))
