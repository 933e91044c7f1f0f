"""Create or continue a study: its sampler and pruner, and the checks that keep it comparable.

A study remembers the search space it was started with and the kind of data its trials were
judged on; continuing it with another of either is refused (or, for a compatible space, allowed
with --allow-space-change), because trials judged differently cannot be ranked together.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import optuna

from study.data import describe_data
from study.space import SearchSpace

if TYPE_CHECKING:
    from study.optimize import OptimizeSettings

PRUNERS = ("hyperband", "median", "none")
SPACE_ATTR = "search_space"
WORKERS_ATTR = "workers_started"
DATA_ATTR = "data"


class StudyMismatch(ValueError):
    """An existing study cannot be continued with these settings; the message says why."""


def make_pruner(name: str, max_epochs: int) -> optuna.pruners.BasePruner:
    """Pruners that compare trials epoch by epoch, so trials of different lengths mix well.

    Hyperband gets max_resource explicitly: its "auto" takes the first finished trial's
    length, which here may be a 1-epoch trial. Its first rung is epoch 2, not 1: after one
    epoch BatchNorm's running statistics are still settling and every trial looks alike.
    """
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=2, max_resource=max(max_epochs, 2), reduction_factor=3
        )
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}: use one of {', '.join(PRUNERS)}")


def make_sampler(space: SearchSpace, seed: int | None) -> optuna.samplers.TPESampler:
    """TPE with the constant-liar strategy; group-decomposed for a conditional space.

    Plain multivariate TPE models only the parameters every trial has and samples the rest
    (SGD's momentum, Adam's beta1, ...) one by one; `group=True` models each set of parameters
    that occur together jointly. The report's space has no conditions and keeps plain TPE.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=seed, constant_liar=True, group=space.is_conditional
        )


def open_study(
    settings: OptimizeSettings,
    storage: optuna.storages.BaseStorage,
    space: SearchSpace,
    data_key: str,
) -> optuna.Study:
    """Create the study or continue it, refusing settings it was not started with."""
    study = optuna.create_study(
        storage=storage,
        study_name=settings.study_name,
        direction="minimize",
        sampler=make_sampler(space, None),  # each worker sets its own seeded one
        pruner=make_pruner(settings.pruner, space.max_epochs),
        load_if_exists=True,
    )
    if study.direction != optuna.study.StudyDirection.MINIMIZE:
        raise StudyMismatch(
            f"study {settings.study_name!r} maximises its objective; catdog studies minimise "
            "test loss: use another --study-name"
        )
    stored_space = study.user_attrs.get(SPACE_ATTR)
    wanted_space = {"name": space.name, "fingerprint": space.fingerprint(), **space.to_dict()}
    if stored_space is None:
        study.set_user_attr(SPACE_ATTR, wanted_space)
        study.set_user_attr(DATA_ATTR, data_key)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(["validation loss" if settings.val_fraction else "test loss"])
        return study
    if study.user_attrs.get(DATA_ATTR, data_key) != data_key:
        raise StudyMismatch(
            f"study {settings.study_name!r} was run on {study.user_attrs[DATA_ATTR]}; "
            f"this run uses {data_key}: use another --study-name"
        )
    if stored_space["fingerprint"] != space.fingerprint():
        _change_space(study, stored_space, space, settings.allow_space_change)
        study.set_user_attr(SPACE_ATTR, wanted_space)
    return study


def _change_space(study: optuna.Study, stored: dict, space: SearchSpace, allowed: bool) -> None:
    """Refuse a different space unless allowed and Optuna can hold both in one study."""
    old = f"{stored['name']} ({stored['fingerprint']})"
    new = f"{space.name} ({space.fingerprint()})"
    if not allowed:
        raise StudyMismatch(
            f"study {study.study_name!r} was started with search space {old}; this run asks "
            f"for {new}: use the same --space and --max-epochs, another --study-name, or "
            "--allow-space-change"
        )
    held = {
        name: distribution
        for trial in study.get_trials(deepcopy=False)
        for name, distribution in trial.distributions.items()
    }
    problems = space.incompatible_with(held)
    if problems:
        raise StudyMismatch(
            f"study {study.study_name!r} cannot change from search space {old} to {new}: "
            f"{'; '.join(problems)}, and Optuna cannot change a parameter's kind, log scale "
            "or categorical choices within one study: use another --study-name"
        )
    warnings.warn(
        f"study {study.study_name!r} continues with search space {new} instead of {old} "
        "(--allow-space-change): its sampler learns from the trials of both",
        stacklevel=2,
    )


def data_key(root: Path, image_size: int, val_fraction: float = 0.0, split_seed: int = 0) -> str:
    """What must stay the same for trials to be comparable: kind of data, image size, and the
    set that judges them (the test set, or which validation part of the training set).
    """
    key = describe_data(root, image_size).split(" from ")[0] + f", {image_size} px"
    if val_fraction > 0:
        key += f", validation {val_fraction:g} of training_set split with --seed {split_seed}"
    return key
