"""The built-in search spaces: the report's four knobs, and those plus the usual training ones."""

from __future__ import annotations

from catdog.config import LR_SCHEDULES, OPTIMIZERS
from study.settings import DEFAULT_MAX_EPOCHS
from study.space.dimensions import Dimension, SearchSpace

LR_RANGE = (1e-4, 0.3)  # log-uniform; holds the report's SGD 0.1 and Adam 0.01


def report_space(max_epochs: int = DEFAULT_MAX_EPOCHS) -> SearchSpace:
    """The report's four knobs: optimizer, learning rate, shuffle and number of epochs."""
    return SearchSpace(
        "report",
        (
            Dimension("optimizer", "categorical", choices=("sgd", "adam")),
            Dimension("lr", "log", low=LR_RANGE[0], high=LR_RANGE[1]),
            Dimension("shuffle", "categorical", choices=(True, False)),
            Dimension("epochs", "int", low=1, high=max_epochs),
        ),
    )


def extended_space(max_epochs: int = DEFAULT_MAX_EPOCHS) -> SearchSpace:
    """The report's four knobs plus the usual training ones; the network stays the report's.

    The report's recipe is a point of this space (batch 128, no weight decay, plain SGD or
    Adam's default beta1, constant lr, no label smoothing, 2 degrees, flip, no crop), so the
    report's runs can be queued in it unchanged.
    """
    sgd, adam = {"optimizer": ("sgd",)}, {"optimizer": ("adam", "adamw")}
    return SearchSpace(
        "extended",
        (
            Dimension("optimizer", "categorical", choices=OPTIMIZERS),
            Dimension("lr", "log", low=LR_RANGE[0], high=LR_RANGE[1]),
            Dimension("shuffle", "categorical", choices=(True, False)),
            Dimension("epochs", "int", low=1, high=max_epochs),
            Dimension("batch_size", "categorical", choices=(32, 64, 128, 256)),
            Dimension("weight_decay", "log", low=1e-6, high=1e-2, or_zero=True),
            Dimension("momentum", "float", low=0.0, high=0.99, when=sgd),
            Dimension("nesterov", "categorical", choices=(False, True), when=sgd),
            Dimension("beta1", "float", low=0.8, high=0.99, when=adam),
            Dimension("lr_schedule", "categorical", choices=LR_SCHEDULES),
            Dimension("warmup_epochs", "int", low=0, high=3),  # capped at epochs - 1
            Dimension("label_smoothing", "float", low=0.0, high=0.2),
            Dimension("rotation_degrees", "categorical", choices=(2.0, 10.0, 20.0)),
            Dimension("min_crop_scale", "float", low=0.25, high=1.0),  # 1.0: no crop
            Dimension("flip", "categorical", choices=(True, False)),
        ),
    )
