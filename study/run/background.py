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

A job that raises skips the later jobs of the same key (one trial's: they may rely on it), not
the others', and its error is raised in the training loop's thread by `check()` or `wait()`,
where the run's error handling is; never by `submit`, so that it is not taken for the error of
the trial that happened to hand over work next. `mark()` and `settle()` let the training loop
wait, at a moment of its choosing, for what it handed over before a point: a fused run settles
before each epoch's reports, so that the pruner and the sampler see the same study however far
behind the thread is (a study stays reproducible from its seed).

`Background(thread=False)` runs each job at once, in the caller's thread, raising its error
there: the same code with no thread, for a run on a CPU and for one trial at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
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
        self._error: BaseException | None = None  # the first job error, for check()
        self._failed: set[Hashable] = set()  # keys whose later jobs are skipped
        self._queued: set[str] = set()  # names of submit_once jobs not started yet
        self._lock = threading.Lock()
        self._mark: Future | None = None

    @property
    def threaded(self) -> bool:
        """True when jobs run on the thread (what they read must not change meanwhile)."""
        return self._pool is not None

    def submit(self, job: Job, *, key: Hashable | None = None) -> None:
        """Run `job` after every job submitted before it (at once, without a thread)."""
        if self._pool is None:
            job()
            return
        self._pool.submit(self._run, job, key)

    def submit_once(self, name: str, job: Job) -> None:
        """As submit, unless a job of the same name is still waiting to start: that one will
        do (e.g. rewriting the study note once for trials that ended together)."""
        with self._lock:
            if name in self._queued:
                return
            self._queued.add(name)

        def started() -> None:
            with self._lock:
                self._queued.discard(name)
            job()

        self.submit(started)

    def check(self) -> None:
        """Raise the error of a job that failed, if one did; never waits."""
        if self._error is not None:
            raise self._error

    def mark(self) -> None:
        """Remember this point: settle() waits for the jobs submitted before it."""
        if self._pool is not None:
            self._mark = self._pool.submit(_nothing)

    def settle(self) -> None:
        """Return once the jobs submitted before the last mark() have run (raises nothing)."""
        if self._mark is not None:
            self._mark.exception()

    def wait(self) -> None:
        """Return once every job submitted so far has run; raise the first error of one."""
        self.drain()
        self.check()

    def drain(self) -> None:
        """Return once every job submitted so far has run, raising nothing (a run that stops
        for another reason still finishes what it handed over; errors are kept for check)."""
        if self._pool is not None:
            # One thread, in order: when this has run, so has everything submitted before it.
            self._pool.submit(_nothing).exception()

    def close(self) -> None:
        """Drain, and end the thread."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _run(self, job: Job, key: Hashable | None) -> None:
        if key is not None and key in self._failed:
            return  # an earlier job of this trial failed: this one may rely on it
        try:
            job()
        except BaseException as error:  # noqa: BLE001 - handed to the training loop's thread
            if self._error is None:
                self._error = error
            if key is not None:
                self._failed.add(key)


def _nothing() -> None:
    pass
