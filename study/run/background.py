"""Work that no epoch waits for, done beside the training loop on one thread, in order.

After each epoch of a fused run, each member's curves go to the storage and its resume
checkpoint to disk; when a member ends, its model file is written, its learning-curves PNG and
note are drawn and stored, it is told to Optuna, and the dashboard's study note is rewritten.
None of that changes what the next epoch computes, so the training loop hands it over here and
goes on: a GPU no longer idles while the CPU writes SQLite rows and renders PNGs (issue 13,
"the fixed costs").

One thread and one queue, so every job runs in the order it was handed over: a trial's curves
are stored before it is told, its checkpoint pointer is written before its files are removed.
Optuna's storages may be used from several threads (study.optimize(n_jobs=...) does).

The first job that raises stops the queue: the jobs after it are skipped (they may rely on
it), and `check()` or `wait()` raise its error in the training loop's thread, where the run's
error handling is. `Background(thread=False)` runs each job at once, in the caller's thread:
the same code with no thread, for a run on a CPU and for one trial at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

Job = Callable[[], None]

# Devices whose runs hand this work to a thread: where a GPU trains, the CPU is free for it.
# On a CPU the training uses every core, and a thread beside it only slows the epochs down
# (measured: docs/DEVELOPMENT.md, "Fixed costs"), so the work is done at once there.
THREAD_DEVICES = ("cuda",)


class Background:
    """Jobs run one at a time, in the order submitted; see the module docstring."""

    @classmethod
    def for_device(cls, device: torch.device) -> Background:
        """A thread for a run on a device of THREAD_DEVICES; at once elsewhere."""
        return cls(thread=device.type in THREAD_DEVICES)

    def __init__(self, *, thread: bool = True) -> None:
        self._pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="catdog-background")
            if thread
            else None
        )
        self._last: Future | None = None
        self._error: BaseException | None = None
        self._queued: set[str] = set()  # keys of submit_once jobs not started yet
        self._lock = threading.Lock()

    @property
    def threaded(self) -> bool:
        """True when jobs run on the thread (what they read must not change meanwhile)."""
        return self._pool is not None

    def submit(self, job: Job) -> None:
        """Run `job` after every job submitted before it. Raises the error of an earlier job."""
        self.check()
        if self._pool is None:
            job()
            return
        self._last = self._pool.submit(self._run, job)

    def submit_once(self, key: str, job: Job) -> None:
        """As submit, unless a job of the same key is still waiting to start: that one will
        do (e.g. rewriting the study note once for trials that ended together)."""
        with self._lock:
            if key in self._queued:
                return
            self._queued.add(key)

        def started() -> None:
            with self._lock:
                self._queued.discard(key)
            job()

        self.submit(started)

    def check(self) -> None:
        """Raise the error of a job that failed, if one did; never waits."""
        if self._error is not None:
            raise self._error

    def wait(self) -> None:
        """Return once every job submitted so far has run; raise the first error of one."""
        if self._last is not None:
            self._last.result()
        self.check()

    def drain(self) -> None:
        """Return once every job submitted so far has run, raising nothing (a run that stops
        for another reason still finishes what it handed over; errors are kept for check)."""
        if self._last is not None:
            self._last.exception()

    def close(self) -> None:
        """Drain, and end the thread."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _run(self, job: Job) -> None:
        if self._error is not None:
            return  # an earlier job failed: this one may rely on it
        try:
            job()
        except BaseException as error:  # noqa: BLE001 - handed to the training loop's thread
            self._error = error
