"""Per-epoch checkpoints of running trials, so a trial whose worker died resumes, not restarts.

After every epoch the trial's whole training state (model, optimizer, schedule, random
generator, history) goes to `<artifact dir>/resume/<study>/trial-<n>-epoch-<e>.pt`, written
atomically; the file name, epoch and SHA-256 go to the trial's `resume_checkpoint` user attr,
and only then is the previous epoch's file removed, so a kill at any moment leaves one complete
checkpoint that the attr describes. A retried trial (Optuna's RetryHeartbeatStaleTrialCallback
copies the dead trial's user attrs, or a Ctrl-C re-queue does) finds the attr, checks the file's
SHA-256 and loads it with `torch.load(weights_only=True)`, which never runs pickled code.
"""

from __future__ import annotations

import pickle
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import optuna
import torch

from catdog.atomic import atomic_write
from catdog.config import TrainConfig
from catdog.errors import CatdogError
from catdog.modelfile import sha256_of
from catdog.train import TrainState
from study.attrs import FAIL_REASON_ATTR, RESUME_ATTR, WORKER_ATTR
from study.optuna_private import retry_history, retry_system_attrs
from study.store.disk import disk_full, is_disk_full, require_room
from study.store.studies import find_trial

RESUME_FORMAT = "catdog-resume-1"


class CheckpointRefused(CatdogError, ValueError):
    """A resume checkpoint that failed a check; the message says which and why."""


@dataclass(frozen=True)
class ResumePoint:
    state: dict[str, Any]  # TrainState.state_dict() after `epoch` epochs
    epoch: int


class ResumeStore:
    """The resume checkpoints of one study, in `<artifact dir>/resume/<study>/`."""

    def __init__(self, artifact_dir: str | Path, study_name: str) -> None:
        safe_name = re.sub(r"[^A-Za-z0-9_.-]", "_", study_name)
        self.folder = Path(artifact_dir) / "resume" / safe_name

    def save(
        self,
        trial: optuna.Trial,
        state: TrainState,
        config: TrainConfig,
        seed: int,
        precision: str | None = None,
    ) -> None:
        """Checkpoint the state after its last epoch and point the trial's attr at it.

        precision: "fp32" or "bf16", what the state was trained in (a resumed run must match).
        """
        self.write(trial, self.snapshot(state, config, seed, precision))

    @staticmethod
    def snapshot(
        state: TrainState,
        config: TrainConfig,
        seed: int,
        precision: str | None = None,
        *,
        copy: bool = False,
    ) -> dict[str, Any]:
        """What `write` stores for the state after its last epoch. copy: its tensors copied to
        the CPU, so that training that goes on changes none of it while another thread
        writes it."""
        state_dict = state.state_dict()
        return {
            "format": RESUME_FORMAT,
            "config": config.to_dict(),
            "seed": seed,
            "precision": precision,
            "epoch": len(state.history),
            "state": _on_cpu(state_dict) if copy else state_dict,
        }

    def write(self, trial: optuna.Trial, payload: dict[str, Any]) -> None:
        """Store a snapshot atomically, point the trial's attr at it, then remove the
        trial's previous one (a kill at any moment leaves one whole checkpoint)."""
        epoch = payload["epoch"]
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"trial-{trial.number}-epoch-{epoch}.pt"
        what = f"trial {trial.number}'s checkpoint after epoch {epoch}"
        # torch.save's zip adds headers and aligns each tensor: 4 % more here, 1/8 asked for.
        size = _bytes_of(payload) * 9 // 8
        require_room(what, self.folder, size)
        try:
            with atomic_write(path) as temporary:
                _save(payload, temporary)
        except OSError as error:
            if not is_disk_full(error):
                raise
            raise disk_full(what, self.folder, size) from None
        previous = trial.user_attrs.get(RESUME_ATTR)
        trial.set_user_attr(
            RESUME_ATTR, {"file": path.name, "epoch": epoch, "sha256": sha256_of(path)}
        )
        if previous and previous["file"] != path.name and self._owned(trial, previous):
            (self.folder / previous["file"]).unlink(missing_ok=True)

    def load(
        self, info: dict[str, Any], config: TrainConfig, seed: int, precision: str | None = None
    ) -> ResumePoint:
        """The checkpoint `info` describes, after checking it; CheckpointRefused otherwise.

        precision: the run's; a checkpoint written in another one is refused, so that a trial
        never mixes precisions (it starts again at epoch 1).
        """
        path = self.folder / info["file"]
        if not path.is_file():
            raise CheckpointRefused(f"resume checkpoint {path} is missing")
        if sha256_of(path) != info["sha256"]:
            raise CheckpointRefused(
                f"resume checkpoint {path} does not match the SHA-256 recorded when it was "
                "written (changed or damaged); refusing to load it"
            )
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise CheckpointRefused(
                f"resume checkpoint {path} holds something other than plain tensors and values; "
                f"refusing to load it ({type(error).__name__}: {first_line})"
            ) from None
        if not isinstance(payload, dict) or payload.get("format") != RESUME_FORMAT:
            raise CheckpointRefused(f"{path} is not a catdog resume checkpoint")
        if payload["config"] != config.to_dict() or payload["seed"] != seed:
            raise CheckpointRefused(f"{path} was written for another configuration or seed")
        written_in = payload.get("precision")
        if precision is not None and written_in is not None and written_in != precision:
            raise CheckpointRefused(
                f"resume checkpoint {path} was trained in {written_in}; this run trains in "
                f"{precision}"
            )
        return ResumePoint(payload["state"], int(payload["epoch"]))

    def discard(self, trial: optuna.Trial) -> None:
        """Remove the checkpoints this trial wrote or resumed from: it has ended for good."""
        for number in {trial.number, *retry_history(trial)}:
            self.remove(number)

    def remove(self, number: int) -> None:
        """Remove the checkpoints trial `number` wrote (reading nothing from the storage)."""
        for path in self.folder.glob(f"trial-{number}-epoch-*.pt"):
            path.unlink(missing_ok=True)

    @staticmethod
    def _owned(trial: optuna.Trial, info: dict[str, Any]) -> bool:
        """True when the checkpoint file was written by this trial (not the one it resumed)."""
        return info["file"].startswith(f"trial-{trial.number}-")


class _KeptWriteError:
    """A file object that keeps the error of a failed write: torch.save's zip writer turns it
    into RuntimeError "unexpected pos", which no longer says that the disk is full."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle, self.error = handle, None

    def write(self, data: bytes) -> int:
        try:
            return self.handle.write(data)
        except OSError as error:
            self.error = error
            raise

    def flush(self) -> None:
        self.handle.flush()


def _save(payload: dict[str, Any], path: Path) -> None:
    """torch.save to `path`; a failed write raises its own OSError (ENOSPC for a full disk)."""
    with open(path, "wb", buffering=0) as handle:
        writer = _KeptWriteError(handle)
        try:
            torch.save(payload, writer)
        except RuntimeError:
            if writer.error is None:
                raise
            raise writer.error from None


def _bytes_of(value: Any) -> int:
    """Bytes the tensors of a (nested) state dict take, about what torch.save writes of it."""
    if isinstance(value, torch.Tensor):
        return value.nbytes
    if isinstance(value, dict):
        return sum(_bytes_of(item) for item in value.values())
    if isinstance(value, list | tuple):
        return sum(_bytes_of(item) for item in value)
    return 64  # a number or a string, with its pickled key: a margin


def _on_cpu(value: Any) -> Any:
    """A copy of a (nested) state dict whose tensors are CPU copies of the originals."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: _on_cpu(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_on_cpu(item) for item in value)
    return value


def queued_before(study: optuna.Study, trial_numbers: list[int]) -> int:
    """How many queued (WAITING) trials run before the queued copies of trials
    `trial_numbers`: Optuna takes queued trials in the order of their numbers, and a copy is
    queued last. 0 when none of them has a copy queued."""
    waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retries = optuna.storages.RetryHeartbeatStaleTrialCallback.retry_history
        copies = {t.number for t in waiting if retries(t)[-1:] in [[n] for n in trial_numbers]}
    if not copies:
        return 0
    return sum(t.number < min(copies) for t in waiting if t.number not in copies)


def requeue(study: optuna.Study, trial_number: int) -> None:
    """Queue an interrupted (FAIL) trial again, the way Optuna's RetryHeartbeatStaleTrialCallback
    queues a dead worker's trial, so that the next run resumes it from its checkpoint. The copy
    keeps the trial's user attrs but how it ended and which process trained it."""
    failed = find_trial(study, trial_number)
    if failed is None or failed.state != optuna.trial.TrialState.FAIL:
        return
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.WAITING,
            params=failed.params,
            distributions=failed.distributions,
            user_attrs={
                k: v
                for k, v in failed.user_attrs.items()
                if k not in (FAIL_REASON_ATTR, WORKER_ATTR)
            },
            system_attrs=retry_system_attrs(failed),
        )
    )
