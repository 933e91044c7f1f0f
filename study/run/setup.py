"""Set up one `optimize` run, once: every option resolved and checked, the study opened or
continued, the queued trials added, and a plan for the workers.

Workers started at once (by hand, or on several machines) would each queue the report's runs:
opening the study and queueing are done under a lock, by one of them at a time.
"""

from __future__ import annotations

import optuna

from catdog.device import resolve_device
from study.attrs import WORKERS_ATTR
from study.data.source import resolve_data
from study.run.plan import RunPlan, split_trials
from study.run.progress import Progress
from study.run.queue import enqueue_paper_runs, plan_reruns
from study.run.study import (
    data_key,
    make_pruner,
    make_sampler,
    open_study,
    worker_seed,
    workers_started,
)
from study.settings import OptimizeSettings
from study.space.dimensions import SearchSpace, SpaceError
from study.space.resolve import resolve_space
from study.store.locks import storage_lock
from study.store.storage import open_storage, parse_storage_url


def set_up_run(settings: OptimizeSettings, progress: Progress) -> tuple[RunPlan, optuna.Study]:
    """The plan for the workers, and the study opened with worker 0's sampler.

    Raises the CatdogError of the first option that cannot be used (space, data, device,
    storage, re-runs, a study started otherwise); ValueError for counts below 1.
    """
    if settings.trials < 1 or settings.jobs < 1 or settings.max_epochs < 1:
        raise ValueError("--trials, --jobs and --max-epochs must be at least 1")
    space = resolve_space(settings.space, max_epochs=settings.max_epochs)
    source = resolve_data(settings.data, settings.image_size, progress.echo)
    device = resolve_device(settings.device)  # fail now, not in every worker
    storage = open_storage(
        settings.storage, heartbeat_interval=settings.heartbeat, grace_period=settings.grace_period
    )
    reruns = plan_reruns(
        storage, settings.enqueue_from or settings.study_name, settings.enqueue_trial, space
    )  # checked before the study is created or changed
    with storage_lock(parse_storage_url(settings.storage), f"study-{settings.study_name}"):
        # Every worker ever started on this study gets its own ordinal, and from it its own
        # sampler seed (see worker_seed); this run's are reserved here, for all its workers.
        first_worker = workers_started(storage, settings.study_name)
        study = open_study(
            storage=storage,
            study_name=settings.study_name,
            space=space,
            data_key=data_key(source, settings.val_fraction, settings.seed),
            metric_name="validation loss" if settings.val_fraction else "test loss",
            sampler=make_sampler(space, worker_seed(settings.seed, first_worker)),
            pruner=make_pruner(settings.pruner, space.max_epochs),
            allow_space_change=settings.allow_space_change,
        )
        for rerun in reruns:  # first: the user asked for them by number
            rerun.enqueue(study)
            progress.echo(f"queued a re-run of {rerun.label} (seed {rerun.seed})")
        if settings.seed_configs:
            _queue_paper_runs(study, space, progress)
        workers = len(split_trials(settings.trials, settings.jobs))
        study.set_user_attr(WORKERS_ATTR, first_worker + workers)
    plan = RunPlan(
        space=space,
        source=source,
        device=device,
        precision=settings.precision,
        val_fraction=settings.val_fraction,
        seed=settings.seed,
        storage=settings.storage,
        study_name=settings.study_name,
        artifact_dir=settings.artifact_dir,
        heartbeat=settings.heartbeat,
        grace_period=settings.grace_period,
        pruner=settings.pruner,
        trials=settings.trials,
        jobs=settings.jobs,
        first_worker=first_worker,
        timeout=settings.timeout,
        compile=settings.compile,
    )
    return plan, study


def _queue_paper_runs(study: optuna.Study, space: SearchSpace, progress: Progress) -> None:
    try:
        queued = enqueue_paper_runs(study, space.max_epochs, space)
    except SpaceError as error:
        reason = str(error).splitlines()[0]
        progress.echo(f"the report's configurations are not in this space ({reason})")
        return
    if queued:
        progress.echo(f"queued the report's {queued} configurations as the first trials")
