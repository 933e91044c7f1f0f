"""What a study reports while it runs: a line per trial start, per epoch and per trial end, and
the tally of this command's trials (see display.py for where it all goes).

An output nobody reads any more (`optimize ... | head`, a closed terminal) stops the run the
way Ctrl-C does, instead of failing the trial that was printing: see study/run/signals.py.
"""

from __future__ import annotations

import errno
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial, TrialState

from catdog.config import TrainConfig
from catdog.train import EpochMetrics
from study.attrs import (
    FAIL_REASON_ATTR,
    TEST_ACCURACY_ATTR,
    TEST_LOSS_ATTR,
    accuracy_attr,
    loss_attr,
)
from study.results.labels import describe_config
from study.run.display import Display, PlainDisplay
from study.run.signals import Stopped, StopSignals, silence_stdout


@dataclass
class Progress:
    prefix: str = ""  # e.g. "[worker 2] " when several workers share a terminal
    eval_split: str = "test"  # "val" when a validation part judges the epochs
    stops: StopSignals | None = None  # told when the output is gone
    display: Display = field(default_factory=lambda: PlainDisplay(0))
    verbose: bool = False  # --verbose: every setting of each trial, not only the changed ones
    # A fused run tells its trials from a thread of its own (background.py): one line at a time.
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def echo(self, message: str) -> None:
        self._show(self.display.line, f"{self.prefix}{message}")

    def decoding(self, done: int, total: int) -> None:
        self._show(self.display.decoding, done, total)

    def trial_started(self, number: int, config: TrainConfig) -> None:
        settings = describe_config(config)
        if self.verbose:
            settings = " ".join(f"{name}={value}" for name, value in config.to_dict().items())
        self.echo(f"trial {number}: {settings}")
        self._show(self.display.trial, number, 0, config.epochs)

    def epoch_finished(self, number: int, config: TrainConfig, m: EpochMetrics) -> None:
        self.echo(
            f"  trial {number} epoch {m.epoch:>2}/{config.epochs}  "
            f"train loss {m.train_loss:.4f} acc {m.train_accuracy:6.1%}  "
            f"{self.eval_split} loss {m.eval_loss:.4f} acc {m.eval_accuracy:6.1%}  "
            f"({m.seconds:.1f} s)"
        )
        self._show(self.display.trial, number, m.epoch, config.epochs)

    def trial_finished(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Optuna callback: how the trial ended."""
        split, attrs = self.eval_split, trial.user_attrs
        accuracy, loss = attrs.get(accuracy_attr(split)), attrs.get(loss_attr(split))
        figures = f"{split} accuracy {accuracy:.1%}" if accuracy is not None else ""
        if trial.state == TrialState.COMPLETE:
            if split == "val":  # the test set, scored once the trial finished
                figures += (
                    f"; test loss {attrs.get(TEST_LOSS_ATTR, float('nan')):.4f}, "
                    f"test accuracy {attrs.get(TEST_ACCURACY_ATTR, float('nan')):.1%}"
                )
            # The last epoch's loss, not trial.value: that is the error (1 - accuracy) when the
            # study ranks by accuracy.
            shown = float("nan") if loss is None else loss
            self.echo(f"trial {trial.number} finished: {split} loss {shown:.4f}, {figures}")
        elif trial.state == TrialState.PRUNED:
            epochs = len(trial.intermediate_values)
            self.echo(f"trial {trial.number} pruned after epoch {epochs}: {figures}")
        elif trial.state == TrialState.FAIL:
            reason = trial.user_attrs.get(FAIL_REASON_ATTR, "see the error above")
            self.echo(f"trial {trial.number} failed: {reason}")
        self._show(self.display.ended, trial.number, trial.state.name, trial.value, accuracy, loss)

    def trial_lost(self, number: int) -> None:
        """Trial `number` ended elsewhere (another worker took it over)."""
        self._show(self.display.ended, number, "FAIL", None, None)

    def _show(self, show: Callable[..., None], *args: object) -> None:
        try:
            with self._lock:
                show(*args)
        except OSError as error:
            if error.errno not in (errno.EPIPE, errno.EIO):
                raise
            silence_stdout()
            if self.stops is None:
                raise Stopped(signal.SIGPIPE) from None
            self.stops.stop(signal.SIGPIPE)
