"""Why a trial ends FAIL: the one line stored on it (its fail_reason), the same whether the trial
trained alone (objective.py) or fused with others (fused/).

A reason says what a user can change: the memory refused and the batch size and image size it
was for, a full disk, or what stopped the run and after which epoch. An error that is a bug has
no reason (failure_reason gives None): the run ends with its traceback, and the trial stores the
error's first line (store_error).
"""

from __future__ import annotations

import errno
import re

import optuna
import torch

from catdog.config import TrainConfig
from catdog.errors import CatdogError
from catdog.train import TrainingDiverged, is_out_of_memory
from study.attrs import FAIL_REASON_ATTR, loss_curve_attr
from study.run.signals import Stopped

# What a user can change when a trial runs out of memory (TPE does not learn from a FAIL trial:
# it may draw the same batch size again).
MEMORY_ADVICE = (
    "try a smaller --image-size, fewer --jobs or --fuse, or a --space file with smaller batch "
    "sizes"
)


class TrialFailed(CatdogError, RuntimeError):
    """A trial that cannot finish for a reason stored on it; the study goes on."""


def failure_reason(
    error: BaseException, config: TrainConfig | None, image_size: int | None = None
) -> str | None:
    """The one line stored on a trial that `error` ends, or None for an error that is a bug.

    image_size: the training images' side in px, named when memory ran out."""
    if isinstance(error, TrainingDiverged):
        return str(error)
    if is_out_of_memory(error):
        batch_size = config.batch_size if config is not None else None
        return f"{out_of_memory(error, batch_size, image_size)}; {MEMORY_ADVICE}"
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"disk full while writing a checkpoint ({error.strerror}); "
            "free space and run again; checkpoints of earlier trials are intact"
        )
    return None


def out_of_memory(error: BaseException, batch_size: int | None, image_size: int | None) -> str:
    """E.g. 'out of memory (2.5 GiB refused) at batch size 128 and 512 px': which memory, the
    allocation refused, and the batch size and image size (px) it was for."""
    what = "device memory" if isinstance(error, torch.OutOfMemoryError) else "memory"
    refused = re.search(r"tried to allocate ([\d.]+) ?(bytes|[KMGT]iB)", str(error), re.I)
    if refused is not None:
        amount, unit = refused.groups()
        size = f"{float(amount) / 2**30:.1f} GiB" if unit == "bytes" else f"{amount} {unit}"
        what += f" ({size} refused)"
    at = [f"batch size {batch_size}"] if batch_size is not None else []
    at += [f"{image_size} px"] if image_size is not None else []
    return f"out of {what}" + (f" at {' and '.join(at)}" if at else "")


def store_error(trial: optuna.Trial, error: BaseException) -> None:
    """Every trial that ends FAIL says why, an unexpected error's too (its first line)."""
    first_line = (str(error).strip().splitlines() or [""])[0]
    trial.set_user_attr(FAIL_REASON_ATTR, f"error: {type(error).__name__}: {first_line}")


def stop_cause(stop: KeyboardInterrupt) -> str:
    """How a stopped trial's reason begins: 'interrupted by the user' (Ctrl-C, or a stop that
    is not a Stopped), 'stopped by SIGTERM'..."""
    return stop.trial_reason if isinstance(stop, Stopped) else "interrupted by the user"


def stop_reason(cause: str, epochs: int, *, again: bool = True) -> str:
    """E.g. 'stopped by SIGTERM after epoch 2; queued again to resume' (`again`: the trial is
    queued again, to resume from its checkpoint)."""
    return f"{cause} after epoch {epochs}" + ("; queued again to resume" if again else "")


def epochs_stored(trial: optuna.Trial, split: str) -> int:
    """How many epochs' curves `trial` stored on the `split` ('test' or 'val') it is evaluated
    on: the epoch a stop came after."""
    return len(trial.user_attrs.get(loss_curve_attr(split), []))
