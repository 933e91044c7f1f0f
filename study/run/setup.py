"""Set up one `optimize` run, once: every option resolved and checked, the study opened or
continued, dead workers' trials taken over, the queued trials added, and a plan for the workers.

Everything a user can get wrong is checked before anything is written, in the order a user would
fix it, and whatever can be checked without decoding an image before the images are decoded:
the space, the device, the storage URL, the artifact folder, the data folder's layout and
classes, then the storage (its driver, whether it answers, room on its disk) and the study
(whether it can go on with this data, its classes, image size, space and precision; the re-runs
asked for), and only then the
images (read once, into the cache). Only then is the storage opened and the study created or
changed.
Workers started at once (by hand, or on several machines) would each queue the report's runs:
opening the study and queueing are done under a lock, by one of them at a time.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import torch

from catdog.dataset import DatasetLayout
from catdog.device import choose_precision, resolve_device
from catdog.fused.choose import FuseChoice, choose_width
from catdog.paper import PAPER_RUNS
from study.attrs import STUDY_FUSE_ATTR, STUDY_PRECISION_ATTR, WORKERS_ATTR
from study.data.source import resolve_data
from study.data.splits import check_data, dataset_layout, eval_split_of
from study.run.plan import RunPlan, split_trials
from study.run.progress import Progress
from study.run.queue import Rerun, enqueue_paper_runs, plan_reruns
from study.run.study import (
    check_classes,
    data_key,
    make_pruner,
    make_sampler,
    open_study,
    refuse_changes,
    stored_study_attrs,
    study_objective,
    study_precision,
    worker_seed,
)
from study.run.takeover import take_over_dead_trials
from study.settings import OptimizeSettings, grace_period_problem
from study.space.dimensions import SearchSpace, SpaceError
from study.space.resolve import resolve_space
from study.store.artifacts import check_artifact_dir, open_artifact_store
from study.store.existing import probe_storage
from study.store.locks import storage_lock
from study.store.storage import open_storage, parse_storage_url


def set_up_run(settings: OptimizeSettings, progress: Progress) -> tuple[RunPlan, optuna.Study]:
    """The plan for the workers, and the study opened with worker 0's sampler.

    Raises the CatdogError of the first option that cannot be used (space, device, storage,
    artifact folder, data, precision, re-runs, a study started otherwise); ValueError for
    counts below 1 or a grace period too short for the heartbeat.
    """
    if settings.trials < 1 or settings.jobs < 1 or settings.max_epochs < 1:
        raise ValueError("--trials, --jobs and --max-epochs must be at least 1")
    grace_period = settings.grace_period_s
    if problem := grace_period_problem(settings.heartbeat, grace_period):
        raise ValueError(problem)
    space = resolve_space(settings.space, max_epochs=settings.max_epochs)
    device = resolve_device(settings.device)
    url = parse_storage_url(settings.storage)
    check_artifact_dir(settings.artifact_dir)
    source = resolve_data(settings.data, settings.image_size, progress.echo)
    layout = dataset_layout(source, settings.val_fraction)  # classes, val/: folder names only
    key = data_key(source, settings.val_fraction, settings.seed, val_folder=layout.val)
    reruns = _check_study(settings, space, device.type, key, layout)
    image_count = check_data(
        source,
        val_fraction=settings.val_fraction,
        seed=settings.seed,
        echo=progress.echo,
        on_decoded=progress.decoding,
    )
    storage = open_storage(
        settings.storage,
        heartbeat_interval=settings.heartbeat,
        grace_period=grace_period,
        timeout_s=settings.storage_timeout,
        say=progress.echo,
    )
    _create_artifact_dir(settings.artifact_dir, progress)
    with storage_lock(url, f"study-{settings.study_name}"):
        stored = stored_study_attrs(storage, settings.study_name)
        check_classes(settings.study_name, stored, layout.labels)
        chosen_precision = study_precision(
            settings.precision,
            device.type,
            stored,
            lambda: choose_precision(settings.precision, device),
        )
        precision = chosen_precision.precision
        progress.echo(str(chosen_precision))
        eval_split = eval_split_of(layout, settings.val_fraction)
        objective, kept = study_objective(
            settings.objective, settings.study_name, stored, eval_split
        )
        if kept is not None:
            progress.echo(kept)
        # Every worker ever started on this study gets its own ordinal, and from it its own
        # sampler seed (see worker_seed); this run's are reserved here, for all its workers.
        first_worker = int(stored.get(WORKERS_ATTR, 0))
        study = open_study(
            storage=storage,
            study_name=settings.study_name,
            space=space,
            data_key=key,
            objective=objective,
            eval_split=eval_split,
            class_names=layout.labels,
            sampler=make_sampler(space, worker_seed(settings.seed, first_worker)),
            pruner=make_pruner(settings.pruner, space.max_epochs),
            allow_space_change=settings.allow_space_change,
        )
        take_over_dead_trials(study, grace_period, progress.echo)
        for rerun in reruns:  # first: the user asked for them by number
            queued = rerun.enqueue(study)
            progress.echo(
                f"queued a re-run of {rerun.label} (seed {rerun.seed})"
                if queued is None
                else f"a re-run of {rerun.label} is already queued (trial {queued})"
            )
        if settings.seed_configs:
            _queue_paper_runs(study, space, progress)
        workers = len(split_trials(settings.trials, settings.jobs))
        study.set_user_attr(WORKERS_ATTR, first_worker + workers)
        chosen = stored.get(STUDY_PRECISION_ATTR, {})
        study.set_user_attr(STUDY_PRECISION_ATTR, {**chosen, device.type: precision})
    fuse = resolve_fuse(settings, space, device, source.image_size, precision, image_count)
    _tell_fuse(fuse, settings, device, progress)
    study.set_user_attr(STUDY_FUSE_ATTR, fuse.to_dict())  # the dashboard shows why this K
    plan = RunPlan(
        space=space,
        source=source,
        device=device,
        precision=precision,
        val_fraction=settings.val_fraction,
        seed=settings.seed,
        storage=settings.storage,
        study_name=settings.study_name,
        artifact_dir=settings.artifact_dir,
        heartbeat=settings.heartbeat,
        grace_period=grace_period,
        pruner=settings.pruner,
        trials=settings.trials,
        jobs=settings.jobs,
        first_worker=first_worker,
        timeout=settings.timeout,
        compile=settings.compile,
        verbose=progress.verbose,
        fuse=fuse.width,
        fuse_split=fuse.split_layers,
        objective=objective,
        storage_timeout=settings.storage_timeout,
    )
    return plan, study


def _check_study(
    settings: OptimizeSettings,
    space: SearchSpace,
    device_kind: str,
    key: str,
    layout: DatasetLayout,
) -> list[Rerun]:
    """What a run checks of its storage before it decodes any image (reading only): the
    database's driver is installed, it answers, its disk has room, the study (where it exists)
    can go on with these settings and the data set's classes, and the trials to re-run exist.
    Returns the re-runs."""
    probe = probe_storage(settings.storage)
    try:
        source_study = settings.enqueue_from or settings.study_name
        reruns = plan_reruns(
            probe or optuna.storages.InMemoryStorage(), source_study, settings.enqueue_trial, space
        )
        if probe is None:
            return reruns
        try:
            study = optuna.load_study(
                study_name=settings.study_name,
                storage=probe,
                sampler=optuna.samplers.RandomSampler(),
            )
        except KeyError:  # a new study in an existing database
            return reruns
        eval_split = eval_split_of(layout, settings.val_fraction)
        objective, _ = study_objective(
            settings.objective, settings.study_name, study.user_attrs, eval_split
        )
        refuse_changes(study, space, key, objective, eval_split, settings.allow_space_change)
        check_classes(settings.study_name, study.user_attrs, layout.labels)
        study_precision(
            settings.precision, device_kind, study.user_attrs, lambda: settings.precision
        )
        return reruns
    finally:
        if probe is not None:
            probe.engine.dispose()


def _create_artifact_dir(artifact_dir: str, progress: Progress) -> None:
    """Create the artifact folder, saying so: a mistyped --artifact-dir would go unnoticed."""
    folder = Path(artifact_dir)
    if folder.exists():
        return
    open_artifact_store(folder)
    progress.echo(f"created folder {folder} for the trials' models and checkpoints")


def resolve_fuse(
    settings: OptimizeSettings,
    space: SearchSpace,
    device: torch.device,
    image_size: int,
    precision: str,
    images: int,
) -> FuseChoice:
    """--fuse as a FuseChoice. auto: 1 with --jobs above 1 (each worker would measure on a GPU
    the others use), else catdog.fused.choose_width (1 on a CPU; measured on a GPU at the
    space's largest batch size, for the `images` the run will hold there), never more than
    the run's trials."""
    if settings.fuse != "auto":
        return FuseChoice(int(settings.fuse), f"--fuse {settings.fuse}")
    if settings.jobs > 1:
        why = f"--jobs {settings.jobs}: each worker would measure on a GPU the others use"
        return FuseChoice(1, why)
    return choose_width(
        device,
        image_size,
        space.max_batch_size,
        precision,
        most=settings.trials,
        data_bytes=images * 3 * image_size * image_size,  # uint8 pixels
    )


def _tell_fuse(
    choice: FuseChoice, settings: OptimizeSettings, device: torch.device, progress: Progress
) -> None:
    """One line on what --fuse chose and why; with -v what `auto` measured, before it."""
    auto = settings.fuse == "auto"
    if progress.verbose and choice.measured:
        progress.echo(f"--fuse auto measured on {choice.setting}: {choice.rates_line()}")
    if choice.width > 1:
        why = f"--fuse auto: {choice.reason}" if auto else "--fuse"
        progress.echo(f"training up to {choice.width} trials at once as one fused network ({why})")
    elif auto and (device.type == "cuda" or progress.verbose):
        progress.echo(f"training one trial at a time (--fuse auto: {choice.reason})")


def _queue_paper_runs(study: optuna.Study, space: SearchSpace, progress: Progress) -> None:
    try:
        queued = enqueue_paper_runs(study, space.max_epochs, space)
    except SpaceError as error:
        reason = str(error).splitlines()[0]
        progress.echo(f"the report's configurations are not in this space ({reason})")
        return
    if queued == len(PAPER_RUNS):
        progress.echo(f"queued the report's {queued} configurations as the first trials")
    elif queued:
        trials = "trial" if queued == 1 else f"{queued} trials"
        progress.echo(
            f"queued {queued} of the report's configurations (failed or never run in this "
            f"study) as the next {trials}"
        )
