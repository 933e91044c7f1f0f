"""Where a run's progress goes: a live bar on a terminal, plain lines elsewhere, or nothing.

Every display keeps the same tally of this command's trials (done of asked, pruned, failed, the
best so far, the trial and epoch under way) and estimates the time left from the epochs done so
far. On a terminal a tqdm bar stays at the bottom with the tally, and the per-epoch lines scroll
above it. In a pipe, a log file or CI, the lines are printed as they are, plus a `progress:` line
after each trial and at least once a minute. `--jobs` workers send their lines and tally events
to the command through a queue (QueueDisplay), so that one display shows them all.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import click

PLAIN_PROGRESS_EVERY_S = 60.0  # a plain display's progress line comes at least this often


class Display(Protocol):
    def line(self, text: str) -> None:
        """Print one line (it ends in a newline)."""

    def trial(self, number: int, epoch: int, epochs: int) -> None:
        """Trial `number` has finished `epoch` of its `epochs` (0 when it starts)."""

    def ended(
        self,
        number: int,
        state: str,
        value: float | None,
        accuracy: float | None,
        loss: float | None = None,
    ) -> None:
        """Trial `number` ended: state COMPLETE, PRUNED or FAIL, its objective, accuracy and
        loss (which breaks ties of the objective, as study.results.best does)."""

    def decoding(self, done: int, total: int) -> None:
        """`done` of `total` images of a new data set are decoded."""

    def close(self) -> None:
        """The run is over: leave the terminal clean."""


@dataclass
class Tally:
    """This command's trials so far, and the time it expects the rest to take."""

    total: int  # trials this command was asked for
    started: float = field(default_factory=lambda: time.monotonic())  # s, monotonic clock
    done: int = 0
    pruned: int = 0
    failed: int = 0
    best_value: float | None = None  # lowest objective of a finished trial
    best_accuracy: float | None = None  # that trial's accuracy (fraction)
    best_trial: int | None = None
    best_loss: float = math.inf  # that trial's loss: of equal values, the lower loss is best
    running: dict[int, tuple[int, int]] = field(default_factory=dict)  # number -> epoch, of

    def trial(self, number: int, epoch: int, epochs: int) -> None:
        self.running[number] = (epoch, epochs)

    def ended(
        self,
        number: int,
        state: str,
        value: float | None,
        accuracy: float | None,
        loss: float | None = None,
    ) -> None:
        self.running.pop(number, None)
        self.done += 1
        self.pruned += state == "PRUNED"
        self.failed += state == "FAIL"
        loss = math.inf if loss is None or math.isnan(loss) else loss
        better = self.best_value is None or (
            value is not None and (value, loss) < (self.best_value, self.best_loss)
        )
        if state == "COMPLETE" and value is not None and better:
            self.best_value, self.best_accuracy, self.best_trial = value, accuracy, number
            self.best_loss = loss

    @property
    def fraction(self) -> float:
        """Trials done, counting each running trial by the share of its epochs it has done."""
        running = sum(epoch / epochs for epoch, epochs in self.running.values() if epochs)
        return min(self.total, self.done + running)

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    @property
    def left_s(self) -> float | None:
        """Seconds left at the pace so far; None before there is a pace to go by."""
        done = self.fraction
        if done <= 0:
            return None
        return self.elapsed_s * (self.total - done) / done

    def summary(self) -> str:
        """E.g. '3 of 40 trials done (1 pruned) · best #2 0.4123 (84.1 %) · 2 min 13 s, ~10 min
        left'."""
        parts = [f"{self.done} of {self.total} trials done"]
        ended = [f"{n} {what}" for n, what in ((self.pruned, "pruned"), (self.failed, "failed"))]
        if self.pruned or self.failed:
            parts[0] += f" ({', '.join(e for e in ended if not e.startswith('0 '))})"
        for number, (epoch, epochs) in sorted(self.running.items()):
            parts.append(f"trial {number} epoch {epoch}/{epochs}")
        if self.best_value is not None:
            accuracy = "" if self.best_accuracy is None else f" ({self.best_accuracy:.1%})"
            parts.append(f"best #{self.best_trial} {self.best_value:.4f}{accuracy}")
        left = self.left_s
        timing = _duration(self.elapsed_s)
        if left is not None and self.done < self.total:
            timing += f", ~{_duration(left)} left"
        parts.append(timing)
        return " · ".join(parts)


def _duration(seconds: float) -> str:
    """'45 s', '2 min 13 s', '1 h 04 min'."""
    seconds = max(0, math.floor(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class PlainDisplay:
    """Lines as they come, and a `progress:` line after each trial and at least once a minute."""

    def __init__(self, total: int, *, lines: bool = True) -> None:
        self.tally = Tally(total)
        self.lines = lines  # False (--quiet): only the progress lines' tally, printed at the end
        self._last_progress = time.monotonic()

    def line(self, text: str) -> None:
        if self.lines:
            click.echo(text)

    def trial(self, number: int, epoch: int, epochs: int) -> None:
        self.tally.trial(number, epoch, epochs)
        if time.monotonic() - self._last_progress >= PLAIN_PROGRESS_EVERY_S:
            self._progress()

    def ended(
        self,
        number: int,
        state: str,
        value: float | None,
        accuracy: float | None,
        loss: float | None = None,
    ) -> None:
        self.tally.ended(number, state, value, accuracy, loss)
        self._progress()

    def decoding(self, done: int, total: int) -> None:
        if done == total or time.monotonic() - self._last_progress >= PLAIN_PROGRESS_EVERY_S:
            self.line(f"decoded {done} of {total} images")
            self._last_progress = time.monotonic()

    def close(self) -> None:
        pass

    def _progress(self) -> None:
        self.line(f"progress: {self.tally.summary()}")
        self._last_progress = time.monotonic()


class LiveDisplay:
    """A tqdm bar at the bottom of the terminal with the tally; lines scroll above it."""

    def __init__(self, total: int) -> None:
        from tqdm import tqdm  # only a terminal run draws a bar

        self._tqdm = tqdm
        self.tally = Tally(total)
        self.bar = tqdm(
            total=total,
            unit="trial",
            bar_format="{percentage:3.0f}%|{bar:20}| {desc}",
            dynamic_ncols=True,
            leave=False,
            file=sys.stdout,  # the terminal the lines go to (stderr may be a log file)
        )
        self._decoding: Any = None
        self._closed = False
        self._refresh()

    def line(self, text: str) -> None:
        self._tqdm.write(text)

    def trial(self, number: int, epoch: int, epochs: int) -> None:
        self.tally.trial(number, epoch, epochs)
        self._refresh()

    def ended(
        self,
        number: int,
        state: str,
        value: float | None,
        accuracy: float | None,
        loss: float | None = None,
    ) -> None:
        self.tally.ended(number, state, value, accuracy, loss)
        self._refresh()

    def decoding(self, done: int, total: int) -> None:
        if self._decoding is None:
            self._decoding = self._tqdm(
                total=total, unit="image", desc="decoding", leave=False, file=sys.stdout
            )
        self._decoding.n = done
        self._decoding.refresh()
        if done >= total:
            self._decoding.close()
            self._decoding = None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._decoding is not None:
            self._decoding.close()
        self.bar.close()
        click.echo(f"progress: {self.tally.summary()}")

    def _refresh(self) -> None:
        self.bar.n = self.tally.fraction
        self.bar.set_description_str(self.tally.summary(), refresh=False)
        self.bar.refresh()


class QueueDisplay:
    """A `--jobs` worker's display: every call goes to the command, which shows them all."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def line(self, text: str) -> None:
        self.queue.put(("line", text))

    def trial(self, number: int, epoch: int, epochs: int) -> None:
        self.queue.put(("trial", number, epoch, epochs))

    def ended(
        self,
        number: int,
        state: str,
        value: float | None,
        accuracy: float | None,
        loss: float | None = None,
    ) -> None:
        self.queue.put(("ended", number, state, value, accuracy, loss))

    def decoding(self, done: int, total: int) -> None:
        self.queue.put(("decoding", done, total))

    def close(self) -> None:
        pass


def replay(event: tuple, display: Display) -> None:
    """Show on `display` one event a QueueDisplay sent."""
    kind, *args = event
    getattr(display, kind)(*args)
