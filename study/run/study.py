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
from study.settings import DEFAULT_OBJECTIVE, PRUNERS, SPACE_NAMES
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
        key += f", validation split {val_folder}/"
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

    objective: "loss" or "accuracy" (--objective); eval_split: "test" or "val", the set that
    judges the trials; class_names: the data set's labels, stored on a new study (check_classes
    compares them with an existing one's; one made before they were stored keeps none). Raises
    StudyMismatch as refuse_changes does.
    """
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction="minimize",
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    stored_space = study.user_attrs.get(SEARCH_SPACE_ATTR)
    wanted_space = {"name": space.name, "fingerprint": space.fingerprint(), **space.to_dict()}
    if stored_space is None and study.direction == optuna.study.StudyDirection.MINIMIZE:
        study.set_user_attr(SEARCH_SPACE_ATTR, wanted_space)
        study.set_user_attr(STUDY_DATA_ATTR, data_key)
        study.set_user_attr(STUDY_OBJECTIVE_ATTR, objective)
        study.set_user_attr(STUDY_CLASSES_ATTR, list(class_names))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([metric_name(objective, eval_split)])
        return study
    refuse_changes(study, space, data_key, objective, eval_split, allow_space_change)
    if stored_space["fingerprint"] != space.fingerprint():
        warnings.warn(
            f"study {study.study_name!r} continues with search space {_named(wanted_space)} "
            f"instead of {_named(stored_space)} (--allow-space-change): its sampler learns "
            "from the trials of both",
            stacklevel=2,
        )
        study.set_user_attr(SEARCH_SPACE_ATTR, wanted_space)
    if STUDY_OBJECTIVE_ATTR not in study.user_attrs:  # so that report and export need not guess
        study.set_user_attr(STUDY_OBJECTIVE_ATTR, objective)
    return study


def refuse_changes(
    study: optuna.Study,
    space: SearchSpace,
    data_key: str,
    objective: str,
    eval_split: str,
    allow_space_change: bool = False,
) -> None:
    """StudyMismatch, naming the setting that differs, when the existing `study` maximises,
    ranks its trials by another objective, was run on other data (another data_key), or was
    started with another space (unless allowed and Optuna can hold both). Reads only."""
    name = study.study_name
    if study.direction != optuna.study.StudyDirection.MINIMIZE:
        raise StudyMismatch(
            f"study {name!r} maximises its objective; catdog studies minimise "
            "theirs (an error or a loss): use another --study-name"
        )
    stored_space = study.user_attrs.get(SEARCH_SPACE_ATTR)
    if stored_space is None:  # created, and not yet set up by its first run
        return
    ranked_by = study.user_attrs.get(STUDY_OBJECTIVE_ATTR, "loss")  # older studies: loss
    if ranked_by != objective:
        raise StudyMismatch(_objective_mismatch(name, ranked_by, objective, eval_split))
    stored_data = study.user_attrs.get(STUDY_DATA_ATTR, data_key)
    if stored_data != data_key:
        raise StudyMismatch(
            f"study {name!r} was run on {stored_data}; this run asks for "
            f"{'; '.join(data_differences(stored_data, data_key))}: keep the study's, or use "
            "another --study-name"
        )
    if stored_space["fingerprint"] != space.fingerprint():
        _refuse_space_change(study, stored_space, space, allow_space_change)


def data_differences(stored: str, wanted: str) -> list[str]:
    """What makes data key `wanted` differ from `stored`, in words: ['--image-size 128 (the
    study's: 64)']."""
    # A data key is "KIND, SIZE px[, validation F of training_set split with --seed S]", or
    # with the data set's own val/ folder "KIND, SIZE px, validation split val/".
    old, new = ((key.split(", ", 2) + ["", ""])[:3] for key in (stored, wanted))
    differences = []
    if old[0] != new[0]:
        differences.append(f"--data of {new[0]} (the study's: {old[0]})")
    if old[1] != new[1]:
        differences.append(f"--image-size {new[1][:-3]} (the study's: {old[1][:-3]})")
    if old[2] != new[2]:
        judged = [part or "the test set" for part in (new[2], old[2])]
        differences.append(f"judging on {judged[0]} (the study's: {judged[1]})")
    return differences


def space_differences(stored: dict, space: SearchSpace) -> list[str]:
    """What makes `space` differ from the `stored` one, in words: ['--max-epochs 10 (the
    study's: 20)'], ['--space extended (the study's: report)'], ['lr: log 0.001..0.1 (the
    study's: log 0.0001..0.3)']."""
    if stored["name"] != space.name:
        return [f"--space {space.name} (the study's: {stored['name']})"]
    old = {d["name"]: d for d in stored["dimensions"]}
    new = {d.name: d.to_dict() for d in space.dimensions}
    differences = []
    for dimension in sorted(old.keys() | new.keys()):
        was, now = old.get(dimension), new.get(dimension)
        if was == now:
            continue
        if space.name in SPACE_NAMES and dimension == "epochs" and was and now:
            differences.append(f"--max-epochs {now['high']} (the study's: {was['high']})")
        else:
            differences.append(f"{dimension}: {_bounds(now)} (the study's: {_bounds(was)})")
    return differences


def _bounds(dimension: dict | None) -> str:
    if dimension is None:
        return "absent"
    if "choices" in dimension:
        return "one of " + ", ".join(map(str, dimension["choices"]))
    if "value" in dimension:
        return f"fixed at {dimension['value']}"
    return f"{dimension['kind']} {dimension['low']:g}..{dimension['high']:g}"


def _named(stored: dict) -> str:
    return f"{stored['name']} ({stored['fingerprint']})"


def _refuse_space_change(
    study: optuna.Study, stored: dict, space: SearchSpace, allowed: bool
) -> None:
    """Refuse a different space unless allowed and Optuna can hold both in one study."""
    if not allowed:
        raise StudyMismatch(
            f"study {study.study_name!r} was started with search space {stored['name']}; this "
            f"run asks for {'; '.join(space_differences(stored, space))}: keep the study's, "
            "another --study-name, or --allow-space-change"
        )
    held = {
        name: distribution
        for trial in study.get_trials(deepcopy=False)
        for name, distribution in trial.distributions.items()
    }
    problems = space.incompatible_with(held)
    if problems:
        raise StudyMismatch(
            f"study {study.study_name!r} cannot change from search space {_named(stored)} to "
            f"{space.name} ({space.fingerprint()}): {'; '.join(problems)}, and Optuna cannot "
            "change a parameter's kind, log scale or categorical choices within one study: "
            "use another --study-name"
        )
