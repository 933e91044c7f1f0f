"""Run a study: open or continue it, queue the report's runs, train trials in one or N workers.

Workers are separate processes (`--jobs N`) that each load the data once and run their share of
the trials against the same storage; Optuna's storage is the only thing they share. The TPE
sampler runs with the constant-liar strategy, so concurrent workers do not all try one point.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch

from catdog.device import choose_precision, configure, resolve_device
from study.baselines import enqueue_report_runs
from study.data import default_image_size, describe_data, load_study_data, resolve_data
from study.objective import Objective, TrialFailed
from study.progress import Progress, describe_config
from study.space import DEFAULT_MAX_EPOCHS, SearchSpace, resolve_space, to_config
from study.storage import (
    DEFAULT_ARTIFACT_DIR,
    DEFAULT_STORAGE,
    StorageError,
    open_artifact_store,
    open_storage,
)

PRUNERS = ("hyperband", "median", "none")
SPACE_ATTR = "search_space"
DATA_ATTR = "data"


class StudyMismatch(ValueError):
    """An existing study cannot be continued with these settings; the message says why."""


@dataclass(frozen=True)
class OptimizeSettings:
    trials: int = 40  # trials this command runs (the report's runs count among them)
    max_epochs: int = DEFAULT_MAX_EPOCHS
    pruner: str = "hyperband"
    space: str = "report"
    data: str | None = None  # a folder, "synthetic", or None: real data if present
    image_size: int | None = None  # None: 256 for real data, the synthetic set's own size
    device: str = "auto"
    precision: str = "auto"
    seed: int = 0
    timeout: float | None = None  # seconds, per worker
    jobs: int = 1
    compile: bool = False  # torch.compile the model, once per worker process
    seed_configs: bool = True  # queue the report's four runs first
    storage: str = DEFAULT_STORAGE
    study_name: str = "catdog"
    artifact_dir: str = DEFAULT_ARTIFACT_DIR


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


def open_study(
    settings: OptimizeSettings,
    storage: optuna.storages.BaseStorage,
    space: SearchSpace,
    data_key: str,
    *,
    sampler_seed: int | None = None,
) -> optuna.Study:
    """Create the study or continue it, refusing settings it was not started with."""
    sampler = optuna.samplers.TPESampler(seed=sampler_seed, constant_liar=True)
    study = optuna.create_study(
        storage=storage,
        study_name=settings.study_name,
        direction="minimize",
        sampler=sampler,
        pruner=make_pruner(settings.pruner, settings.max_epochs),
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
            study.set_metric_names(["test loss"])
    elif stored_space["fingerprint"] != space.fingerprint():
        raise StudyMismatch(
            f"study {settings.study_name!r} was started with search space "
            f"{stored_space['name']} ({stored_space['fingerprint']}); this run asks for "
            f"{space.name} ({space.fingerprint()}): use the same --space and --max-epochs, "
            "or another --study-name"
        )
    elif study.user_attrs.get(DATA_ATTR, data_key) != data_key:
        raise StudyMismatch(
            f"study {settings.study_name!r} was run on {study.user_attrs[DATA_ATTR]}; "
            f"this run uses {data_key}: use another --study-name"
        )
    return study


def data_key(root: Path, image_size: int) -> str:
    """What must stay the same for trials to be comparable: kind of data and image size."""
    return describe_data(root, image_size).split(" from ")[0] + f", {image_size} px"


def run_optimize(settings: OptimizeSettings, progress: Progress | None = None) -> optuna.Study:
    """Run settings.trials trials (over settings.jobs workers); returns the study."""
    progress = progress or Progress()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say it better
    if settings.trials < 1 or settings.jobs < 1 or settings.max_epochs < 1:
        raise ValueError("--trials, --jobs and --max-epochs must be at least 1")
    space = resolve_space(settings.space, max_epochs=settings.max_epochs)
    root = resolve_data(settings.data, progress.echo)
    image_size = settings.image_size or default_image_size(root)
    resolve_device(settings.device)  # fail now, not in every worker
    storage = open_storage(settings.storage)
    study = open_study(settings, storage, space, data_key(root, image_size))
    if settings.seed_configs:
        queued = enqueue_report_runs(study, settings.max_epochs)
        if queued:
            progress.echo(f"queued the report's {queued} configurations as the first trials")
    if settings.jobs == 1:
        run_worker(settings, settings.trials, 0, root, image_size)
    else:
        _run_workers(settings, root, image_size)
    return optuna.load_study(study_name=settings.study_name, storage=storage)


def run_worker(
    settings: OptimizeSettings, trials: int, worker: int, root: Path, image_size: int
) -> None:
    """One worker: load the data onto the device once, then run `trials` trials."""
    progress = Progress(f"[worker {worker}] " if settings.jobs > 1 else "")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say it better
    if settings.jobs > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // settings.jobs))
    device = resolve_device(settings.device)
    configure(device)
    precision = choose_precision(settings.precision, device, image_size)
    data = load_study_data(root, image_size, device)
    progress.echo(
        f"training on {device} in {precision}: {data.description}, "
        f"{len(data.train)} training and {len(data.test)} test images"
    )
    storage = open_storage(settings.storage)
    space = resolve_space(settings.space, max_epochs=settings.max_epochs)
    # A fresh sampler seed per worker and per resumed run: a repeated seed would repeat
    # the random start-up points of the earlier run.
    existing = len(optuna.load_study(study_name=settings.study_name, storage=storage).trials)
    sampler_seed = int(
        hashlib.sha256(f"{settings.seed}/{worker}/{existing}".encode()).hexdigest()[:8], 16
    )
    study = open_study(
        settings, storage, space, data_key(root, image_size), sampler_seed=sampler_seed
    )
    objective = Objective(
        space=space,
        data=data,
        precision=precision,
        seed=settings.seed,
        artifact_store=open_artifact_store(settings.artifact_dir),
        progress=progress,
        compile=settings.compile,
    )
    study.optimize(
        objective,
        n_trials=trials,
        timeout=settings.timeout,
        catch=(TrialFailed,),
        callbacks=[progress.trial_finished],
        gc_after_trial=False,
    )


def _worker_entry(
    settings: OptimizeSettings, trials: int, worker: int, root: Path, image_size: int
) -> None:
    warnings.formatwarning = lambda message, *_args, **_kw: f"warning: {message}\n"
    try:
        run_worker(settings, trials, worker, root, image_size)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except (StorageError, StudyMismatch, ValueError) as error:
        print(f"[worker {worker}] error: {error}", flush=True)
        raise SystemExit(1) from None


def _run_workers(settings: OptimizeSettings, root: Path, image_size: int) -> None:
    """Split the trials over settings.jobs processes and wait for all of them."""
    shares = [
        settings.trials // settings.jobs + (i < settings.trials % settings.jobs)
        for i in range(settings.jobs)
    ]
    context = multiprocessing.get_context("spawn")  # no forked CUDA or SQLite state
    workers = [
        context.Process(target=_worker_entry, args=(settings, share, i, root, image_size))
        for i, share in enumerate(shares)
        if share > 0
    ]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.join()
    except KeyboardInterrupt:
        for worker in workers:  # they got the same Ctrl-C; let them mark their trials failed
            worker.join()
        raise
    failed = [w for w in workers if w.exitcode != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(workers)} workers stopped with an error")


def describe_best(study: optuna.Study) -> str:
    """One paragraph on the best finished trial, or why there is none."""
    finished = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not finished:
        return "no trial has finished yet, so there is no best trial"
    best = study.best_trial
    config = to_config({**best.user_attrs.get("config", {}), **best.params})
    accuracy = best.user_attrs.get("test_accuracy", float("nan"))
    return (
        f"best trial {best.number}: {describe_config(config)}\n"
        f"  test loss {best.value:.4f}, test accuracy {accuracy:.2%}"
    )
