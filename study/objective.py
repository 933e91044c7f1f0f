"""The Optuna objective: one trial trains the CNN with the trial's config and returns test loss.

Each epoch's test loss goes to `trial.report`, so the pruner can stop the trial; per-epoch curves
and the final figures are stored as user attrs (the dashboard shows them), and the finished
model is uploaded as an artifact whose id and SHA-256 are kept on the trial.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from optuna.artifacts import upload_artifact

from catdog.modelfile import save_model_file
from catdog.train import DeviceImages, EpochMetrics, TrainingDiverged, TrainState, train
from study.baselines import is_baseline
from study.progress import Progress
from study.space import SearchSpace, to_config

# Names of the per-epoch curves stored on each trial, and where they come from in EpochMetrics.
CURVES = {
    "epoch_train_loss": "train_loss",
    "epoch_train_accuracy": "train_accuracy",
    "epoch_test_loss": "eval_loss",
    "epoch_test_accuracy": "eval_accuracy",
    "epoch_seconds": "seconds",
}
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


@dataclass
class Objective:
    space: SearchSpace
    data: StudyData
    precision: str  # "fp32" or "bf16", resolved once per process
    seed: int  # trial n trains with seed + n unless the trial already carries one
    artifact_store: optuna.artifacts.FileSystemArtifactStore
    progress: Progress
    compile: bool = False  # torch.compile the model; compiled once per process (see new_state)

    def __call__(self, trial: optuna.Trial) -> float:
        config = to_config(self.space.suggest(trial))
        seed = trial.user_attrs.get("seed", self.seed + trial.number)
        device = self.data.train.images.device
        for key, value in {
            "seed": seed,
            "config": config.to_dict(),
            "space": f"{self.space.name} ({self.space.fingerprint()})",
            "precision": self.precision,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "data": self.data.description,
        }.items():
            trial.set_user_attr(key, value)
        self.progress.trial_started(trial.number, config)
        prunable = not is_baseline(trial)

        def on_epoch(metrics: EpochMetrics, state: TrainState) -> None:
            for attr, name in CURVES.items():
                trial.set_user_attr(attr, [getattr(m, name) for m in state.history])
            trial.set_user_attr("test_loss", metrics.eval_loss)
            trial.set_user_attr("test_accuracy", metrics.eval_accuracy)
            trial.report(metrics.eval_loss, metrics.epoch)
            self.progress.epoch_finished(trial.number, config, metrics)
            if prunable and metrics.epoch < config.epochs and trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {metrics.epoch}")

        try:
            state = train(
                config,
                self.data.train,
                self.data.test,
                precision=self.precision,
                seed=seed,
                on_epoch=on_epoch,
                compile=self.compile,
            )
        except TrainingDiverged as error:
            self._fail(trial, str(error))
        except torch.OutOfMemoryError:
            self._fail(
                trial,
                f"out of device memory at batch size {config.batch_size}; "
                "use a smaller batch size or fewer --jobs on this GPU",
            )
        self._store_checkpoint(trial, state, seed)
        return state.history[-1].eval_loss

    def _fail(self, trial: optuna.Trial, reason: str) -> None:
        trial.set_user_attr(FAIL_REASON_ATTR, reason)
        raise TrialFailed(reason)

    def _store_checkpoint(self, trial: optuna.Trial, state: TrainState, seed: int) -> None:
        last = state.history[-1]
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
                precision=self.precision,
                data=self.data.description,
                metrics={
                    "test_loss": last.eval_loss,
                    "test_accuracy": last.eval_accuracy,
                    "epochs": last.epoch,
                },
            )
            artifact_id = upload_artifact(
                artifact_store=self.artifact_store,
                file_path=str(path),
                study_or_trial=trial,
                mimetype="application/octet-stream",
            )
        trial.set_user_attr(CHECKPOINT_ATTR, artifact_id)
        trial.set_user_attr(CHECKPOINT_SHA_ATTR, sha256)
