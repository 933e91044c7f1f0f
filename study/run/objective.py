"""The Optuna objective: one trial trains the CNN with the trial's config and returns its error
(1 - accuracy; or with --objective loss its loss) on the evaluation set: the test set (the
report's protocol) or a validation part of the training set.

Each epoch's evaluation loss goes to `trial.report`, so the pruner can stop the trial, and its
curves are stored as user attrs (reporter.py); the final figures are stored too (the dashboard
shows them), and the finished model is uploaded as an artifact whose id and SHA-256 are kept on
the trial. With a validation part the test set is scored once, when a trial finishes, into
`test_loss` and `test_accuracy`, so those two always mean the test set. A trial that cannot
finish stores why (reasons.py).
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import optuna
import torch
from optuna.artifacts import upload_artifact

from catdog.config import TrainConfig
from catdog.model import CatDogCNN
from catdog.modelfile import save_model_file
from catdog.train import EpochMetrics, TrainState, evaluate, train
from study.attrs import (
    CHECKPOINT_ATTR,
    CHECKPOINT_SHA_ATTR,
    CONFIG_ATTR,
    DATA_ATTR,
    DEVICE_ATTR,
    EVAL_SPLIT_ATTR,
    FAIL_REASON_ATTR,
    PRECISION_ATTR,
    RESUME_ATTR,
    RESUME_REFUSED_ATTR,
    RESUMED_FROM_ATTR,
    SEED_ATTR,
    SPACE_NAME_ATTR,
    TEST_ACCURACY_ATTR,
    TEST_LOSS_ATTR,
    WORKER_ATTR,
    accuracy_attr,
    loss_attr,
)
from study.data.splits import DeviceSplits
from study.optuna_private import retry_history
from study.run.background import Background
from study.run.progress import Progress
from study.run.reasons import (
    TrialFailed,
    epochs_stored,
    failure_reason,
    stop_cause,
    stop_reason,
    store_error,
)
from study.run.reporter import EpochReporter
from study.run.signals import StopSignals
from study.run.takeover import WorkerProcess
from study.space.dimensions import SearchSpace, to_config
from study.store.disk import AGAIN, DiskFull, require_room
from study.store.failures import StorageError, StorageFull
from study.store.resume import CheckpointRefused, ResumePoint, ResumeStore

# Called with the live trial and how it ends ("complete", "pruned after epoch 2 of 10") just
# before it ends: Optuna attaches artifacts only to a trial that is still running.
TrialEnding = Callable[[optuna.Trial, str], None]


@dataclass
class Objective:
    space: SearchSpace
    splits: DeviceSplits
    precision: str  # "fp32" or "bf16", resolved once per process
    seed: int  # trial n trains with seed + n unless the trial already carries one
    artifact_store: optuna.artifacts.FileSystemArtifactStore
    resume_store: ResumeStore
    progress: Progress
    current_trial: int | None = None  # number of the trial started last
    interrupted: int | None = None  # the trial a stop ended inside this objective (to requeue)
    trial_ending: TrialEnding | None = None
    compile: bool = False  # torch.compile the model; compiled once per process (see new_state)
    stops: StopSignals | None = None  # checked after every epoch (see StopSignals.check)
    ranks_by: str = "accuracy"  # --objective: a trial's value is 1 - its last accuracy, or loss
    worker: dict[str, Any] = field(default_factory=lambda: WorkerProcess.this().to_attr())
    # Where the per-epoch writes go: at once (one trial at a time), or to the fused run's
    # thread beside its training loop (see background.py).
    background: Background = field(default_factory=lambda: Background(thread=False))

    def __call__(self, trial: optuna.Trial) -> float:
        """Suggest a configuration, train it reporting every epoch, keep the model, return
        the last epoch's evaluation error or loss (see trial_value).

        A stop is held back from the moment this returns until the next trial starts here
        (see StopSignals.hold): Optuna tells this trial and asks for the next meanwhile."""
        self.current_trial = trial.number
        try:
            return self._train(trial)
        finally:
            if self.stops is not None:
                self.stops.hold()

    def _train(self, trial: optuna.Trial) -> float:
        config: TrainConfig | None = None
        try:
            if self.stops is not None:
                self.stops.release()
                self.stops.check()  # a stop held back since the last trial ends this one
            config, seed = self.start(trial)
            resume = self.resume_point(trial, config, seed)
            state = train(
                config,
                self.splits.train,
                self.splits.eval,
                precision=self.precision,
                seed=seed,
                on_epoch=EpochReporter(self, trial, config, seed),
                resume=resume.state if resume else None,
                compile=self.compile,
            )
            self.finish(trial, state, seed)
        except optuna.TrialPruned:
            self.resume_store.discard(trial)
            raise
        except KeyboardInterrupt as stop:
            self.interrupted = trial.number
            epochs = epochs_stored(trial, self.splits.eval_split)
            trial.set_user_attr(FAIL_REASON_ATTR, stop_reason(stop_cause(stop), epochs))
            raise
        except (TrialFailed, optuna.exceptions.UpdateFinishedTrialError):
            # Its reason is stored; or another worker took it over (the worker says so).
            raise
        except DiskFull as error:  # no room in the artifact folder: this trial fails
            self.fail_for_room(trial, error)
        except StorageError as error:  # the study database failed: the run stops
            if isinstance(error, StorageFull):
                self.resume_store.remove(trial.number)  # room for the reason on a shared disk
                with contextlib.suppress(StorageError):
                    trial.set_user_attr(FAIL_REASON_ATTR, str(error))
            raise
        except (OSError, RuntimeError, MemoryError) as error:  # divergence, disk, memory; or a bug
            reason = failure_reason(error, config, self.splits.train.image_size)
            if reason is None:
                store_error(trial, error)
                raise
        except Exception as error:  # a bug: the run ends with its traceback, the trial says so
            store_error(trial, error)
            raise
        else:
            self.resume_store.discard(trial)
            self.ending(trial, "complete")
            return trial_value(state.history[-1], self.ranks_by)
        # Failed here, past the handler: the error's traceback, and the tensors its frames hold
        # (gigabytes after running out of memory), are freed before the next trial allocates.
        self.fail(trial, reason)

    def held_stops(self) -> contextlib.AbstractContextManager:
        """StopSignals.held() for a block, where this objective has stop signals."""
        return self.stops.held() if self.stops is not None else contextlib.nullcontext()

    def start(self, trial: optuna.Trial) -> tuple[TrainConfig, int]:
        """The trial's config and seed, stored on it with what it runs on."""
        try:
            config = to_config(self.space.suggest(trial))
        except ValueError as error:  # a space file whose values clash, e.g. nesterov at momentum 0
            self.fail(trial, f"the space gave an invalid configuration: {error}")
        seed = trial.user_attrs.get(SEED_ATTR, self.seed + trial.number)
        device = self.splits.train.images.device
        attrs = {
            SEED_ATTR: seed,
            CONFIG_ATTR: config.to_dict(),
            SPACE_NAME_ATTR: f"{self.space.name} ({self.space.fingerprint()})",
            PRECISION_ATTR: self.precision,
            DEVICE_ATTR: torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            DATA_ATTR: self.splits.description,
            EVAL_SPLIT_ATTR: self.splits.eval_split,
            WORKER_ATTR: self.worker,
        }
        self.store_attrs(trial, attrs)
        self.progress.trial_started(trial.number, config)
        return config, seed

    def store_attrs(self, trial: optuna.Trial, attrs: dict[str, Any]) -> None:
        """Set the trial's user attrs through `background` (after what it was handed before)."""
        self.background.submit(functools.partial(_set_user_attrs, trial, attrs), key=trial.number)

    def resume_point(
        self, trial: optuna.Trial, config: TrainConfig, seed: int
    ) -> ResumePoint | None:
        """The checkpoint a retried trial continues from, or None to start at epoch 1."""
        info = trial.user_attrs.get(RESUME_ATTR)
        history = retry_history(trial) if info is not None else []
        if not history:
            return None
        try:
            point = self.resume_store.load(info, config, seed, self.precision)
        except CheckpointRefused as error:
            trial.set_user_attr(RESUME_REFUSED_ATTR, str(error))
            self.progress.echo(f"trial {trial.number}: {error}; starting from epoch 1")
            return None
        trial.set_user_attr(RESUMED_FROM_ATTR, {"trial": history[-1], "epoch": point.epoch})
        self.progress.echo(
            f"trial {trial.number} resumes trial {history[-1]} from its checkpoint after "
            f"epoch {point.epoch}"
        )
        # The earlier epochs' losses, so that the pruner and the dashboard see the whole curve.
        for metrics in point.state["history"]:
            trial.report(metrics["eval_loss"], metrics["epoch"])
        return point

    def finish(self, trial: optuna.Trial, state: TrainState, seed: int) -> None:
        """Score the test set where it was held back, then keep the model as an artifact."""
        self.keep(trial, state.model, seed, self.final_figures(state))

    def final_figures(self, state: TrainState) -> dict[str, float]:
        """The finished model's figures: its last epoch's, and the test set's where it was
        held back (scored here, on the device, once per finished trial: never seen by
        pruning or the sampler)."""
        split, last = self.splits.eval_split, state.history[-1]
        figures = {loss_attr(split): last.eval_loss, accuracy_attr(split): last.eval_accuracy}
        if self.splits.val is not None:
            test_loss, test_accuracy = evaluate(state.model, self.splits.test, self.precision)
            figures |= {TEST_LOSS_ATTR: test_loss, TEST_ACCURACY_ATTR: test_accuracy}
        return figures | {"epochs": len(state.history)}

    def keep(
        self, trial: optuna.Trial, model: CatDogCNN, seed: int, figures: dict[str, float]
    ) -> None:
        """Store the test figures on the trial and the model, with `figures`, as its artifact."""
        for key in (TEST_LOSS_ATTR, TEST_ACCURACY_ATTR):
            if key in figures:
                trial.set_user_attr(key, figures[key])
        self._store_checkpoint(trial, model, seed, figures)

    def ending(self, trial: optuna.Trial, outcome: str) -> None:
        if self.trial_ending is not None:
            self.trial_ending(trial, outcome)

    def fail(self, trial: optuna.Trial, reason: str) -> NoReturn:
        """Store why the trial fails, drop its checkpoints, and raise TrialFailed."""
        trial.set_user_attr(FAIL_REASON_ATTR, reason)
        self.resume_store.discard(trial)
        raise TrialFailed(reason)

    def fail_for_room(self, trial: optuna.Trial, error: DiskFull) -> NoReturn:
        """Fail the trial for a full disk, and stop the run (DiskFull) unless the next trial's
        files fit now that this one's are removed: twice what failed, as a new checkpoint is
        written before the one it replaces is removed."""
        self.resume_store.discard(trial)
        trial.set_user_attr(FAIL_REASON_ATTR, f"disk full: {error}")
        require_room(
            f"the next trial (trial {trial.number} failed for want of it)",
            error.folder,
            2 * error.needed,
            then=f"free space there, then {AGAIN}",
        )
        raise TrialFailed(f"disk full: {error}")

    def _store_checkpoint(
        self, trial: optuna.Trial, model: CatDogCNN, seed: int, figures: dict[str, float]
    ) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"trial-{trial.number}-model.safetensors"
            sha256 = save_model_file(
                path,
                model,
                class_names=self.splits.class_names,
                study=trial.study.study_name,
                trial=trial.number,
                params=trial.params,
                config=trial.user_attrs[CONFIG_ATTR],
                seed=seed,
                space={"fingerprint": self.space.fingerprint(), **self.space.to_dict()},
                precision=self.precision,
                data=self.splits.description,
                metrics=figures,
            )
            artifact_id = upload_artifact(
                artifact_store=self.artifact_store,
                file_path=str(path),
                study_or_trial=trial,
                mimetype="application/octet-stream",
            )
        trial.set_user_attr(CHECKPOINT_ATTR, artifact_id)
        trial.set_user_attr(CHECKPOINT_SHA_ATTR, sha256)


def _set_user_attrs(trial: optuna.Trial, attrs: dict[str, Any]) -> None:
    try:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass  # another worker took the trial over: trial.report says so to the trainer


def trial_value(last: EpochMetrics, ranks_by: str) -> float:
    """What a finished trial tells Optuna (lower is better): its last evaluation loss, or for
    --objective accuracy its error, 1 - the last evaluation accuracy."""
    return last.eval_loss if ranks_by == "loss" else 1.0 - last.eval_accuracy
