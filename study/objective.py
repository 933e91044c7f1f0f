"""The Optuna objective: one trial trains the CNN with the trial's config and returns its loss on
the evaluation set: the test set (the report's protocol) or a validation part of the training set.

Each epoch's evaluation loss goes to `trial.report`, so the pruner can stop the trial; per-epoch
curves and the final figures are stored as user attrs (the dashboard shows them), and the
finished model is uploaded as an artifact whose id and SHA-256 are kept on the trial. With a
validation part the test set is scored once, when a trial finishes, into `test_loss` and
`test_accuracy`, so those two always mean the test set.
"""

from __future__ import annotations

import errno
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from optuna.artifacts import upload_artifact

from catdog.modelfile import save_model_file
from catdog.train import DeviceImages, EpochMetrics, TrainingDiverged, TrainState, evaluate, train
from study.baselines import is_baseline
from study.progress import Progress
from study.rerun import RERUN_ATTR
from study.resume import RESUME_ATTR, CheckpointRefused, ResumePoint, ResumeStore, retry_history
from study.space import SearchSpace, to_config

# Names of the per-epoch curves stored on each trial, and where they come from in EpochMetrics.
CURVES = {
    "epoch_train_loss": "train_loss",
    "epoch_train_accuracy": "train_accuracy",
    "epoch_test_loss": "eval_loss",
    "epoch_test_accuracy": "eval_accuracy",
    "epoch_seconds": "seconds",
}
# The same curves when a validation part is the evaluation set (--val-fraction > 0).
VAL_CURVES = {attr.replace("epoch_test_", "epoch_val_"): name for attr, name in CURVES.items()}
EVAL_SPLIT_ATTR = "eval_split"  # "test" or "val": which set the curves and objective are on
CHECKPOINT_ATTR = "checkpoint_artifact_id"
CHECKPOINT_SHA_ATTR = "checkpoint_sha256"
FAIL_REASON_ATTR = "fail_reason"


class TrialFailed(RuntimeError):
    """A trial that cannot finish for a reason stored on it; the study goes on."""


@dataclass(frozen=True)
class StudyData:
    train: DeviceImages
    test: DeviceImages
    description: str  # what the data is, e.g. "synthetic (storage/data/synthetic), 64 px"
    val: DeviceImages | None = None  # held out of the training set, when --val-fraction > 0

    @property
    def eval_split(self) -> str:
        """Which set judges each epoch: "val" when there is a validation part, else "test"."""
        return "test" if self.val is None else "val"


@dataclass
class Objective:
    space: SearchSpace
    data: StudyData
    precision: str  # "fp32" or "bf16", resolved once per process
    seed: int  # trial n trains with seed + n unless the trial already carries one
    artifact_store: optuna.artifacts.FileSystemArtifactStore
    resume_store: ResumeStore
    progress: Progress
    current_trial: int | None = None  # number of the trial running now, for Ctrl-C handling
    # Called with the live trial and how it ends ("complete", "pruned after epoch 2 of 10")
    # just before it ends: Optuna attaches artifacts only to a trial that is still running.
    trial_ending: Callable[[optuna.Trial, str], None] | None = None
    compile: bool = False  # torch.compile the model; compiled once per process (see new_state)

    def __call__(self, trial: optuna.Trial) -> float:
        self.current_trial = trial.number
        values = self.space.suggest(trial)
        try:
            config = to_config(values)
        except ValueError as error:  # a space file whose values clash, e.g. nesterov at momentum 0
            self._fail(trial, f"the space gave an invalid configuration: {error}")
        seed = trial.user_attrs.get("seed", self.seed + trial.number)
        device = self.data.train.images.device
        for key, value in {
            "seed": seed,
            "config": config.to_dict(),
            "space": f"{self.space.name} ({self.space.fingerprint()})",
            "precision": self.precision,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "data": self.data.description,
            EVAL_SPLIT_ATTR: self.data.eval_split,
        }.items():
            trial.set_user_attr(key, value)
        self.progress.trial_started(trial.number, config)
        resume = self._resume_point(trial, config, seed)
        prunable = not is_baseline(trial) and RERUN_ATTR not in trial.user_attrs
        split = self.data.eval_split
        curves = CURVES if split == "test" else VAL_CURVES

        def on_epoch(metrics: EpochMetrics, state: TrainState) -> None:
            for attr, name in curves.items():
                trial.set_user_attr(attr, [getattr(m, name) for m in state.history])
            trial.set_user_attr(f"{split}_loss", metrics.eval_loss)
            trial.set_user_attr(f"{split}_accuracy", metrics.eval_accuracy)
            trial.report(metrics.eval_loss, metrics.epoch)
            self.progress.epoch_finished(trial.number, config, metrics)
            if metrics.epoch < config.epochs:
                self.resume_store.save(trial, state, config, seed)
                if prunable and trial.should_prune():
                    self._ending(trial, f"pruned after epoch {metrics.epoch} of {config.epochs}")
                    raise optuna.TrialPruned(f"pruned after epoch {metrics.epoch}")

        try:
            state = train(
                config,
                self.data.train,
                self.data.test if self.data.val is None else self.data.val,
                precision=self.precision,
                seed=seed,
                on_epoch=on_epoch,
                resume=resume.state if resume else None,
                compile=self.compile,
            )
            last = state.history[-1]
            figures = {f"{split}_loss": last.eval_loss, f"{split}_accuracy": last.eval_accuracy}
            if self.data.val is not None:
                # The test set, once per finished trial: never seen by pruning or the sampler.
                test_loss, test_accuracy = evaluate(state.model, self.data.test, self.precision)
                figures |= {"test_loss": test_loss, "test_accuracy": test_accuracy}
                trial.set_user_attr("test_loss", test_loss)
                trial.set_user_attr("test_accuracy", test_accuracy)
            self._store_checkpoint(trial, state, seed, figures)
        except optuna.TrialPruned:
            self.resume_store.discard(trial)
            raise
        except KeyboardInterrupt:
            epochs = len(trial.user_attrs.get(f"epoch_{split}_loss", []))
            trial.set_user_attr(
                FAIL_REASON_ATTR,
                f"interrupted by the user after epoch {epochs}; queued again to resume",
            )
            raise
        except TrainingDiverged as error:
            self._fail(trial, str(error))
        except torch.OutOfMemoryError:
            self._fail(
                trial,
                f"out of device memory at batch size {config.batch_size}; "
                "use a smaller batch size or fewer --jobs on this GPU",
            )
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            self._fail(
                trial,
                f"disk full while writing a checkpoint ({error.strerror}); "
                "free space and run again; checkpoints of earlier trials are intact",
            )
        self.resume_store.discard(trial)
        self._ending(trial, "complete")
        return state.history[-1].eval_loss

    def _resume_point(self, trial: optuna.Trial, config, seed: int) -> ResumePoint | None:
        """The checkpoint a retried trial continues from, or None to start at epoch 1."""
        info = trial.user_attrs.get(RESUME_ATTR)
        history = retry_history(trial) if info is not None else []
        if not history:
            return None
        try:
            point = self.resume_store.load(info, config, seed)
        except CheckpointRefused as error:
            trial.set_user_attr("resume_refused", str(error))
            self.progress.echo(f"trial {trial.number}: {error}; starting from epoch 1")
            return None
        trial.set_user_attr("resumed_from", {"trial": history[-1], "epoch": point.epoch})
        self.progress.echo(
            f"trial {trial.number} resumes trial {history[-1]} from its checkpoint after "
            f"epoch {point.epoch}"
        )
        # The earlier epochs' losses, so that the pruner and the dashboard see the whole curve.
        for metrics in point.state["history"]:
            trial.report(metrics["eval_loss"], metrics["epoch"])
        return point

    def _ending(self, trial: optuna.Trial, outcome: str) -> None:
        if self.trial_ending is not None:
            self.trial_ending(trial, outcome)

    def _fail(self, trial: optuna.Trial, reason: str) -> None:
        trial.set_user_attr(FAIL_REASON_ATTR, reason)
        self.resume_store.discard(trial)
        raise TrialFailed(reason)

    def _store_checkpoint(
        self, trial: optuna.Trial, state: TrainState, seed: int, figures: dict[str, float]
    ) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"trial-{trial.number}-model.safetensors"
            sha256 = save_model_file(
                path,
                state.model,
                study=trial.study.study_name,
                trial=trial.number,
                params=trial.params,
                config=trial.user_attrs["config"],
                seed=seed,
                space={"fingerprint": self.space.fingerprint(), **self.space.to_dict()},
                precision=self.precision,
                data=self.data.description,
                metrics={**figures, "epochs": len(state.history)},
            )
            artifact_id = upload_artifact(
                artifact_store=self.artifact_store,
                file_path=str(path),
                study_or_trial=trial,
                mimetype="application/octet-stream",
            )
        trial.set_user_attr(CHECKPOINT_ATTR, artifact_id)
        trial.set_user_attr(CHECKPOINT_SHA_ATTR, sha256)
