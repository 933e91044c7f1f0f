"""Create or continue a study: its sampler and pruner, and the checks that keep it comparable.

A study remembers the search space it was started with, the kind of data its trials were
judged on and the classes they learn; continuing it with another of any is refused (or, for a
compatible space, allowed with --allow-space-change), because trials judged differently cannot
be ranked together.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Sequence

import optuna

from catdog.device import PrecisionChoice
from catdog.errors import CatdogError
from study.attrs import (
    SEARCH_SPACE_ATTR,
    STUDY_CLASSES_ATTR,
    STUDY_DATA_ATTR,
    STUDY_OBJECTIVE_ATTR,
    STUDY_PRECISION_ATTR,
    study_classes,
)
from study.data.source import DataSource
from study.settings import DEFAULT_OBJECTIVE, PRUNERS
from study.space.dimensions import SearchSpace


class StudyMismatch(CatdogError, ValueError):
    """An existing study cannot be continued with these settings; the message says why."""


def make_pruner(name: str, max_epochs: int) -> optuna.pruners.BasePruner:
    """Pruners that compare trials epoch by epoch, so trials of different lengths mix well.

    median (the default) first compares a trial after epoch 4 (n_warmup_steps=4), with the test
    losses of at least 5 finished trials at the same epoch: on real photos (dogs-cats-dev,
    2 000 + 1 000 at 128 px) 13 of 30 runs still predict one class for every image after
    epoch 2, none after epoch 3, so a comparison before epoch 4 decides on noise. Replayed
    studies chose it (benchmarks/search/README.md, "Results"). hyperband compares at epochs
    2, 6 and 18: cheaper, but it stops good runs on noise at epoch 2; it gets max_resource
    explicitly, as its "auto" takes the first finished trial's length, here maybe 1 epoch.
    """
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=2, max_resource=max(max_epochs, 2), reduction_factor=3
        )
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=4)
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


def worker_seed(seed: int, ordinal: int) -> int:
    """The sampler seed of the study's `ordinal`-th worker ever started, from --seed.

    Workers started together must not draw the same random start-up points, and a continued
    study must not repeat those of the run before it.
    """
    return int(hashlib.sha256(f"{seed}/{ordinal}".encode()).hexdigest()[:8], 16)


def stored_study_attrs(storage: optuna.storages.BaseStorage, study_name: str) -> dict:
    """The study's user attrs before it is opened ({} when it does not exist yet)."""
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return {}
    return storage.get_study_user_attrs(study_id)


def study_precision(
    requested: str, device_kind: str, stored: dict, choose: Callable[[], PrecisionChoice]
) -> PrecisionChoice:
    """The precision this run trains in, and why: the one the study chose for this kind of
    device ("cpu", "cuda") when it has one, so that its trials never mix precisions (a trial
    checkpointed in fp32 resumes in fp32); else `choose()`, the choice for this run.

    StudyMismatch when an explicit --precision differs from the study's.
    """
    chosen = stored.get(STUDY_PRECISION_ATTR, {}).get(device_kind)
    if chosen is None:
        return choose()
    if requested not in ("auto", chosen):
        raise StudyMismatch(
            f"this study trains in {chosen} on {device_kind} (chosen when it first ran there); "
            f"--precision {requested} would mix precisions in one study: use --precision auto "
            "or another --study-name"
        )
    return PrecisionChoice(chosen, f"this study's, chosen when it first ran on {device_kind}")


def study_objective(
    requested: str | None, study_name: str, stored: dict, eval_split: str
) -> tuple[str, str | None]:
    """What the study ranks its trials by, and a line to print when it is not what a new study
    would: a new study ranks by `requested` (--objective), else DEFAULT_OBJECTIVE; an existing
    one by the objective it started with (loss, for one started before the objective was stored).

    StudyMismatch when an explicit --objective differs from the study's.
    """
    if SEARCH_SPACE_ATTR not in stored:  # a new study (open_study stores both together)
        return requested or DEFAULT_OBJECTIVE, None
    kept = stored.get(STUDY_OBJECTIVE_ATTR, "loss")
    if requested not in (None, kept):
        raise StudyMismatch(_objective_mismatch(study_name, kept, requested, eval_split))
    if requested is None and kept != DEFAULT_OBJECTIVE:
        return kept, (
            f"study {study_name!r} ranks its trials by {metric_name(kept, eval_split)}, as it "
            f"did when it started (new studies rank by {DEFAULT_OBJECTIVE}: another --study-name)"
        )
    return kept, None


def _objective_mismatch(study_name: str, kept: str, requested: str, eval_split: str) -> str:
    return (
        f"study {study_name!r} ranks its trials by {metric_name(kept, eval_split)}; "
        f"--objective {requested} would rank them by another figure: use --objective "
        f"{kept} or another --study-name"
    )


def data_key(
    source: DataSource,
    val_fraction: float = 0.0,
    split_seed: int = 0,
    *,
    val_folder: str | None = None,
) -> str:
    """What must stay the same for trials to be comparable: kind of data, image size, and the
    set that judges them (the test set, the data set's own val_folder, or which validation
    part of the training set).
    """
    key = f"{source.kind}, {source.image_size} px"
    if val_folder is not None:
        key += f", validation on {val_folder}/"
    elif val_fraction > 0:
        key += f", validation {val_fraction:g} of training_set split with --seed {split_seed}"
    return key


def check_classes(study_name: str, stored: dict, class_names: Sequence[str]) -> None:
    """StudyMismatch when an existing study learned other classes than the data set's
    `class_names` (labels, in class order); a study that names none learned cat and dog."""
    if SEARCH_SPACE_ATTR not in stored:  # a new study (open_study stores both together)
        return
    learned = study_classes(stored)
    if learned != tuple(class_names):
        raise StudyMismatch(
            f"study {study_name!r} learns the classes {', '.join(learned)}; this data set has "
            f"{', '.join(class_names)}: use another --study-name"
        )


def metric_name(objective: str, eval_split: str) -> str:
    """The objective's name in the dashboard: 'test loss', 'validation error (1 - accuracy)'."""
    split = "validation" if eval_split == "val" else "test"
    return f"{split} loss" if objective == "loss" else f"{split} error (1 - accuracy)"


def open_study(
    *,
    storage: optuna.storages.BaseStorage,
    study_name: str,
    space: SearchSpace,
    data_key: str,
    objective: str,
    eval_split: str,
    class_names: Sequence[str],
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
    allow_space_change: bool = False,
) -> optuna.Study:
    """Create the study or continue it, refusing settings it was not started with.

    objective: "loss" or "accuracy", as study_objective resolved it; eval_split: "test" or
    "val", the set that judges the trials; class_names: the data set's labels, stored on a new
    study (check_classes compares them with an existing one's; one made before they were
    stored keeps none). Raises StudyMismatch when the study maximises, ranks
    its trials by another objective, was run on other data (another data_key), or was started
    with another space (unless allowed and Optuna can hold both).
    """
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction="minimize",
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    if study.direction != optuna.study.StudyDirection.MINIMIZE:
        raise StudyMismatch(
            f"study {study_name!r} maximises its objective; catdog studies minimise "
            "theirs (an error or a loss): use another --study-name"
        )
    stored_space = study.user_attrs.get(SEARCH_SPACE_ATTR)
    wanted_space = {"name": space.name, "fingerprint": space.fingerprint(), **space.to_dict()}
    if stored_space is None:
        study.set_user_attr(SEARCH_SPACE_ATTR, wanted_space)
        study.set_user_attr(STUDY_DATA_ATTR, data_key)
        study.set_user_attr(STUDY_OBJECTIVE_ATTR, objective)
        study.set_user_attr(STUDY_CLASSES_ATTR, list(class_names))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([metric_name(objective, eval_split)])
        return study
    ranked_by = study.user_attrs.get(STUDY_OBJECTIVE_ATTR, "loss")  # older studies: loss
    if ranked_by != objective:
        raise StudyMismatch(_objective_mismatch(study_name, ranked_by, objective, eval_split))
    if study.user_attrs.get(STUDY_DATA_ATTR, data_key) != data_key:
        raise StudyMismatch(
            f"study {study_name!r} was run on {study.user_attrs[STUDY_DATA_ATTR]}; "
            f"this run uses {data_key}: use another --study-name"
        )
    if stored_space["fingerprint"] != space.fingerprint():
        _change_space(study, stored_space, space, allow_space_change)
        study.set_user_attr(SEARCH_SPACE_ATTR, wanted_space)
    if STUDY_OBJECTIVE_ATTR not in study.user_attrs:  # so that report and export need not guess
        study.set_user_attr(STUDY_OBJECTIVE_ATTR, ranked_by)
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
