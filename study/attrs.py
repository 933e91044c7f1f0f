"""Every name this project stores on an Optuna trial or study, and small readers of them.

User attrs are what the dashboard shows and what `report`, `export` and re-runs read back, so
their names and value formats are a stored format: never rename one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from catdog.classes import REPORT_LABELS

# --- On each trial (user attrs), set when it starts. -------------------------------------------
SEED_ATTR = "seed"  # int: weight initialisation, batch order and augmentation draws
CONFIG_ATTR = "config"  # TrainConfig.to_dict(): the whole recipe the trial trains with
SPACE_NAME_ATTR = "space"  # "report (fingerprint)": the search space it was drawn from
PRECISION_ATTR = "precision"  # "fp32" or "bf16"
DEVICE_ATTR = "device"  # "cpu" or the GPU's name
DATA_ATTR = "data"  # the data set's description, e.g. "SYNTHETIC shapes from ..., 64 px"
EVAL_SPLIT_ATTR = "eval_split"  # "test" or "val": which set the curves and objective are on
WORKER_ATTR = "worker"  # {"host", "pid", "boot", "started"}: the process that trains it

# Why a trial was queued rather than sampled; such trials are never pruned.
PAPER_RUN_ATTR = "report_config"  # label of the report's configuration it reproduces
RERUN_ATTR = "rerun_of"  # "STUDY trial N": the trial whose configuration and seed it re-runs

# Resuming after a dead worker or Ctrl-C.
RESUME_ATTR = "resume_checkpoint"  # {"file", "epoch", "sha256"} of its last epoch's checkpoint
RESUMED_FROM_ATTR = "resumed_from"  # {"trial", "epoch"}: where a retried trial went on from
RESUME_REFUSED_ATTR = "resume_refused"  # why a checkpoint was not used (it started again)

# How it ended.
FAIL_REASON_ATTR = "fail_reason"  # one line, for a trial that ended FAIL
CHECKPOINT_ATTR = "checkpoint_artifact_id"  # the finished model, in the artifact store
CHECKPOINT_SHA_ATTR = "checkpoint_sha256"  # that file's SHA-256

# Final figures: "test_loss"/"test_accuracy" always mean the test set; with a validation part
# (--val-fraction) "val_loss"/"val_accuracy" are the objective's split. Accuracy is a fraction.
TEST_LOSS_ATTR = "test_loss"
TEST_ACCURACY_ATTR = "test_accuracy"

# Per-epoch curves (lists, one value per finished epoch) by the EpochMetrics field they hold.
CURVES = {
    "epoch_train_loss": "train_loss",
    "epoch_train_accuracy": "train_accuracy",
    "epoch_test_loss": "eval_loss",
    "epoch_test_accuracy": "eval_accuracy",
    "epoch_seconds": "seconds",
}
# The same curves when a validation part is the evaluation set (--val-fraction > 0).
VAL_CURVES = {attr.replace("epoch_test_", "epoch_val_"): name for attr, name in CURVES.items()}

# --- On the study (user attrs). ----------------------------------------------------------------
SEARCH_SPACE_ATTR = "search_space"  # {"name", "fingerprint", "dimensions"} it was started with
STUDY_DATA_ATTR = "data"  # the data key its trials are judged on (see study.run.study.data_key)
# ["cat", "dog"]: the labels of the classes its trials learn, in the models' output order
# (catdog.classes); a study without it was made before other classes were possible: cat, dog.
STUDY_CLASSES_ATTR = "classes"
WORKERS_ATTR = "workers_started"  # every worker ever started on it, for sampler seeds
STUDY_OBJECTIVE_ATTR = "objective"  # "loss" or "accuracy": what it ranks trials by (--objective)
STUDY_PRECISION_ATTR = "precision"  # {"cpu": "fp32", "cuda": "bf16"}: chosen once per device kind
# The last run's --fuse: {"chosen": K, "why": one line, and for `auto` on a GPU what it measured:
# "measured_on", "images_per_second", "autotune_s", "peak_gib", "split_blocks" by K}.
STUDY_FUSE_ATTR = "fuse"


def loss_attr(split: str) -> str:
    """'test_loss' or 'val_loss': the final loss on that split."""
    return f"{split}_loss"


def accuracy_attr(split: str) -> str:
    """'test_accuracy' or 'val_accuracy': the final accuracy (fraction) on that split."""
    return f"{split}_accuracy"


def curve_attrs(split: str) -> dict[str, str]:
    """The per-epoch curve attrs of a trial evaluated on `split` ("test" or "val")."""
    return CURVES if split == "test" else VAL_CURVES


def loss_curve_attr(split: str) -> str:
    """The per-epoch evaluation loss curve: 'epoch_test_loss' or 'epoch_val_loss'."""
    return next(attr for attr, name in curve_attrs(split).items() if name == "eval_loss")


def eval_split(user_attrs: Mapping[str, Any]) -> str:
    """Which set judged a trial's epochs: "val" for a validation part, else "test"."""
    return "val" if user_attrs.get(EVAL_SPLIT_ATTR) == "val" else "test"


def study_classes(user_attrs: Mapping[str, Any]) -> tuple[str, ...]:
    """The labels of a study's classes, in output order (cat, dog for a study naming none)."""
    return tuple(user_attrs.get(STUDY_CLASSES_ATTR) or REPORT_LABELS)


def is_synthetic(data: str | None) -> bool:
    """True when a data description or data key names the SYNTHETIC set."""
    return "SYNTHETIC" in str(data or "")


def is_paper_run(user_attrs: Mapping[str, Any]) -> bool:
    """True for a queued trial of one of the report's four configurations."""
    return PAPER_RUN_ATTR in user_attrs


def is_prunable(user_attrs: Mapping[str, Any]) -> bool:
    """The report's runs and re-runs are references: they always run to their last epoch."""
    return not is_paper_run(user_attrs) and RERUN_ATTR not in user_attrs
