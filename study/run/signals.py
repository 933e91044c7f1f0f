"""Every way a run is told to stop ends it the way Ctrl-C does.

Ctrl-C (SIGINT), `kill` (SIGTERM), a closed terminal (SIGHUP), the death of the command that
started a `--jobs` worker, and an output nobody reads any more (a closed pipe) all raise
`Stopped` in the main thread. The running trial then ends FAIL with the reason stored on it,
is queued again to resume from its last epoch's checkpoint, and the command exits 128 + the
signal's number (130 for Ctrl-C).

The first stop wins: later signals are ignored, so that the stopping itself (marking the trial,
queueing it again) is never cut short. A stop is not raised where it would do harm, but
delivered again a moment later (and `check()` raises it at the next epoch in any case):
- inside a finalizer or a weakref callback, where Python would only print "Exception ignored";
- inside the storage's own code (SQLAlchemy, a database driver, Optuna's storages), where an
  exception between two statements of a transaction leaves the connection half-way: the next
  write of the same worker (marking its trial FAIL) then failed with "database is locked";
- between `hold()` and `release()`: from a trial's last epoch to the start of the next trial,
  where it is kept, Optuna tells it and asks for the next (study.ask). A stop there left the
  asked trial RUNNING with no worker recorded on it, or failed a trial that had trained all its
  epochs; held, it is raised by the check() after the trial is told (or as the next trial
  starts), and the trial that ended is kept as it ended.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType, TracebackType

# SIGPIPE too: Python ignores it (a write to a closed pipe raises EPIPE instead), and a
# command whose output closed sends it to itself and to its workers.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE)

# What stopped the run, as the command's last line and each stopped trial's reason begin.
CAUSES = {
    signal.SIGINT: "interrupted",
    signal.SIGTERM: "stopped by SIGTERM",
    signal.SIGHUP: "stopped: the terminal closed (SIGHUP)",
    signal.SIGPIPE: "stopped: the output was closed (broken pipe)",
}
PARENT_ENDED = "stopped: the command that started this worker ended"
REDELIVER_AFTER_S = 0.05  # a stop held back (see above) is signalled again this much later
# Code a stop must not cut in two: its frames' file paths contain one of these.
STORAGE_CODE = ("/sqlalchemy/", "/optuna/storages/", "/psycopg", "/sqlite3/")


class Stopped(KeyboardInterrupt):
    """The run was told to stop. A KeyboardInterrupt, so that Optuna treats it as Ctrl-C: the
    running trial ends FAIL and the exception goes on up to the command."""

    def __init__(self, signum: int, cause: str | None = None) -> None:
        self.signum = signum
        self.cause = cause or CAUSES.get(signum) or f"stopped by {signal.strsignal(signum)}"
        self.trials: list[int] = []  # the trials this process stopped and queued again
        self.workers = False  # True when `--jobs` worker processes were stopped
        super().__init__(self.cause)

    @property
    def message(self) -> str:
        """The command's last line: what stopped it and what became of the running trials."""
        again = "Run the same command again to continue the study."
        cause = f"{self.cause}: every worker stopped" if self.workers else self.cause
        if not self.trials:
            kept = "every finished trial is kept"
            return f"{cause} while no trial was running; {kept}. {again}"
        cause += ";" if self.workers else ":"
        numbers = ", ".join(map(str, sorted(self.trials)))
        if len(self.trials) == 1:
            which = (
                f"the running trial is marked FAIL and queued again to resume (trial {numbers})"
            )
        else:
            which = f"the running trials are marked FAIL and queued again to resume ({numbers})"
        return f"{cause} {which}; every finished trial is kept. {again}"

    def unfinished(self, error: BaseException) -> str:
        """One line for a stop that failed half-way (the storage refused to mark the trial)."""
        # The first error in the chain names the fault (Optuna's own assertions come after it).
        while isinstance(nested := error.__cause__ or error.__context__, Exception):
            error = nested
        text = str(error).strip().splitlines()
        return (
            f"{self.cause}, but stopping failed ({type(error).__name__}: "
            f"{text[0] if text else ''}); the running trial is left RUNNING, and the next run "
            "on this machine resumes it at once"
        )

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a command a signal ended."""
        return 128 + self.signum

    @property
    def trial_reason(self) -> str:
        """How a trial's fail_reason begins: 'interrupted by the user', 'stopped by SIGTERM'."""
        return "interrupted by the user" if self.signum == signal.SIGINT else self.cause


class StopSignals:
    """While in its with-block, the stop signals raise Stopped in the main thread."""

    def __init__(self) -> None:
        self.stopped: Stopped | None = None
        self.parent_ended = False  # set by a worker's watchdog before it signals the worker
        self._previous: dict[int, object] = {}
        self._previous_hook = sys.unraisablehook
        self._swallowed = False  # the stop was raised where Python could only print it
        self._held = False  # between hold() and release()
        self._active = False  # inside the with-block

    def __enter__(self) -> StopSignals:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        self._previous_hook, sys.unraisablehook = sys.unraisablehook, self._unraisable
        self._active = True
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._active = False
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        sys.unraisablehook = self._previous_hook

    def stop(self, signum: int, cause: str | None = None) -> None:
        """Stop the run now (or raise again the stop already under way); between hold() and
        release(), as a signal there, at the check() after release()."""
        if self.stopped is None:
            self.stopped = Stopped(signum, cause)
        if self._held:
            return
        self._swallowed = False  # raised: its copy signalled again later is ignored
        raise self.stopped

    def check(self) -> None:
        """Raise the stop that arrived, if one did and was not raised yet where it arrived."""
        if self.stopped is not None:
            self._swallowed = False  # raised: its copy signalled again later is ignored
            raise self.stopped

    def hold(self) -> None:
        """Hold back a stop from here until release(); the caller's check() after release()
        raises it."""
        self._held = True

    def release(self) -> None:
        """End hold(); a stop held back is raised by the next check()."""
        self._held = False

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """hold() for the block; a stop that came meanwhile is raised as it ends."""
        self.hold()
        try:
            yield
        finally:
            self.release()
        self.check()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGPIPE:
            silence_stdout()  # nothing written from here on may fail again
        if self.stopped is not None and not self._swallowed:
            return  # one stop is enough: let the trial be marked and queued again
        self._swallowed = False
        if self.stopped is None:
            self.stopped = Stopped(signum, PARENT_ENDED if self.parent_ended else None)
        if self._held:
            return  # raised by check() after release()
        if _in_storage_code(frame):
            self._deliver_again()
            return
        raise self.stopped

    def _unraisable(self, unraisable: sys.UnraisableHookArgs) -> None:
        if self.stopped is None or unraisable.exc_value is not self.stopped:
            self._previous_hook(unraisable)
            return
        # Raised in a finalizer, where Python can only print it.
        self._deliver_again()

    def _deliver_again(self) -> None:
        """Signal the stop again shortly, when the main thread is back in ordinary code."""
        assert self.stopped is not None
        self._swallowed = True
        timer = threading.Timer(REDELIVER_AFTER_S, self._redeliver, (self.stopped.signum,))
        timer.daemon = True  # never keeps a finished process alive
        timer.start()

    def _redeliver(self, signum: int) -> None:
        # Not once check() raised it, nor after the with-block, where the signal would meet
        # the handler from before (Python's KeyboardInterrupt) as the command exits.
        if self._swallowed and self._active:
            os.kill(os.getpid(), signum)


def _in_storage_code(frame: FrameType | None) -> bool:
    while frame is not None:
        if any(part in frame.f_code.co_filename for part in STORAGE_CODE):
            return True
        frame = frame.f_back
    return False


def silence_stdout() -> None:
    """Send what is still written to standard output to /dev/null, so that nothing (Python's
    own flush at exit included) fails again on a pipe that was closed."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no file behind stdout (tests, notebooks)
        pass
