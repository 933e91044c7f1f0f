"""The hyperparameters of one training run, in one place; the study's search space fills them.

Defaults are the report's recipe: batch 128, constant learning rate, plain SGD or Adam,
RandomRotation(2) and a horizontal flip, no weight decay, no label smoothing. The report varied
only optimizer, lr, shuffle and epochs; the rest are here so a wider search can vary them too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

OPTIMIZERS = ("sgd", "adam", "adamw")
LR_SCHEDULES = ("constant", "cosine", "one-cycle")
# Numeric precision of a run (a run setting, not a hyperparameter): "auto" is resolved once per
# process by catdog.device.choose_precision. Kept here, free of torch, for the command line.
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class Augmentation:
    """What catdog.augment does to each training batch (the report's: 2 degrees and a flip)."""

    rotation_degrees: float = 2.0  # the report's RandomRotation(2)
    flip: bool = True  # the report's RandomHorizontalFlip(p=0.5)
    min_crop_scale: float = 1.0  # RandomResizedCrop's smallest area fraction; 1.0 = no crop

    @property
    def is_identity(self) -> bool:
        return self.rotation_degrees == 0 and not self.flip and self.min_crop_scale >= 1.0


@dataclass(frozen=True)
class TrainConfig:
    optimizer: str = "adam"  # one of OPTIMIZERS
    lr: float = 0.01  # peak learning rate
    shuffle: bool = True  # False: class-sorted file order every epoch, like shuffle=False
    epochs: int = 10
    batch_size: int = 128  # images per step
    weight_decay: float = 0.0  # L2 (sgd, adam) or decoupled (adamw) decay
    momentum: float = 0.0  # sgd only; the report used plain SGD
    nesterov: bool = False  # sgd only, needs momentum > 0
    beta1: float = 0.9  # adam/adamw first-moment decay
    lr_schedule: str = "constant"  # one of LR_SCHEDULES, stepped per batch
    warmup_epochs: int = 0  # linear warm-up from 0 before the schedule
    label_smoothing: float = 0.0  # training loss only; evaluation uses plain cross-entropy
    rotation_degrees: float = 2.0  # random rotation in [-d, +d] degrees
    flip: bool = True  # random horizontal flip
    min_crop_scale: float = 1.0  # random-resized-crop smallest area fraction; 1.0 = none

    def __post_init__(self) -> None:
        problems = []
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}")
        if self.lr_schedule not in LR_SCHEDULES:
            problems.append(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}")
        if not self.lr > 0:
            problems.append("lr must be positive")
        if self.epochs < 1 or self.batch_size < 2:
            problems.append("epochs must be >= 1 and batch_size >= 2")
        if not 0 <= self.warmup_epochs < max(self.epochs, 1) and self.warmup_epochs != 0:
            problems.append("warmup_epochs must be smaller than epochs")
        if not 0 < self.min_crop_scale <= 1:
            problems.append("min_crop_scale must be in (0, 1]")
        if self.nesterov and self.momentum <= 0:
            problems.append("nesterov needs momentum > 0")
        # Values torch would only reject once training starts.
        if not (0 <= self.momentum < 1 and 0 <= self.beta1 < 1):
            problems.append("momentum and beta1 must be in [0, 1)")
        if not 0 <= self.label_smoothing < 1:
            problems.append("label_smoothing must be in [0, 1)")
        if self.weight_decay < 0 or not 0 <= self.rotation_degrees <= 180:
            problems.append("weight_decay must be >= 0 and rotation_degrees in [0, 180]")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def augmentation(self) -> Augmentation:
        return Augmentation(self.rotation_degrees, self.flip, self.min_crop_scale)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from stored values; unknown keys are an error, missing keys take the defaults."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(unknown)}")
        return cls(**values)
