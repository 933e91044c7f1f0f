"""Run a study: open or continue it, queue the report's runs, train trials in one or N workers.

Workers are separate processes (`--jobs N`) that each load the data once and run their share of
the trials against the same storage; Optuna's storage is the only thing they share. The TPE
sampler runs with the constant-liar strategy, so concurrent workers do not all try one point.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import signal
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch

from catdog.device import choose_precision, configure, resolve_device
from study.baselines import enqueue_report_runs
from study.dashboard import StudyNoteRefresher, TrialCurvesPublisher
from study.data import default_image_size, load_study_data, prepare_data, resolve_data
from study.locks import storage_lock
from study.objective import EVAL_SPLIT_ATTR, Objective, TrialFailed
from study.progress import Progress, describe_config
from study.rerun import plan_reruns
from study.resume import ResumeStore, requeue
from study.space import DEFAULT_MAX_EPOCHS, SpaceError, resolve_space, to_config
from study.storage import (
    DEFAULT_ARTIFACT_DIR,
    DEFAULT_STORAGE,
    GRACE_PERIOD_S,
    HEARTBEAT_INTERVAL_S,
    StorageError,
    open_artifact_store,
    open_storage,
    parse_storage_url,
)
from study.studies import WORKERS_ATTR, StudyMismatch, data_key, make_sampler, open_study


@dataclass(frozen=True)
class OptimizeSettings:
    trials: int = 40  # trials this command runs (the report's runs count among them)
    max_epochs: int = DEFAULT_MAX_EPOCHS
    pruner: str = "hyperband"
    space: str = "report"  # report, extended or a TOML space file
    allow_space_change: bool = False  # continue a study with a different (compatible) space
    data: str | None = None  # a folder, "synthetic", or None: real data if present
    image_size: int | None = None  # None: 256 for real data, the synthetic set's own size
    val_fraction: float = 0.0  # > 0: hold out this much of the training set for validation
    device: str = "auto"
    precision: str = "auto"
    seed: int = 0
    timeout: float | None = None  # seconds, per worker
    jobs: int = 1
    compile: bool = False  # torch.compile the model, once per worker process
    seed_configs: bool = True  # queue the report's four runs first
    enqueue_trial: tuple[int, ...] = ()  # re-run these trials' configs and seeds first
    enqueue_from: str | None = None  # the study holding them; None: this study
    storage: str = DEFAULT_STORAGE
    study_name: str = "catdog"
    artifact_dir: str = DEFAULT_ARTIFACT_DIR
    heartbeat: int = HEARTBEAT_INTERVAL_S  # seconds between a running trial's heartbeats
    grace_period: int = GRACE_PERIOD_S  # seconds without heartbeat before a trial is dead

    def open_storage(self) -> optuna.storages.RDBStorage:
        return open_storage(
            self.storage, heartbeat_interval=self.heartbeat, grace_period=self.grace_period
        )


def _data_key(settings: OptimizeSettings, root: Path, image_size: int) -> str:
    return data_key(root, image_size, settings.val_fraction, settings.seed)


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
    storage = settings.open_storage()
    reruns = plan_reruns(
        storage, settings.enqueue_from or settings.study_name, settings.enqueue_trial, space
    )  # checked before the study is created or changed
    # Workers started at once (by hand, or on several machines) would each queue the report's
    # runs: setting up the study is done by one of them at a time.
    with storage_lock(parse_storage_url(settings.storage), f"study-{settings.study_name}"):
        study = open_study(settings, storage, space, _data_key(settings, root, image_size))
        for rerun in reruns:  # first: the user asked for them by number
            rerun.enqueue(study)
            progress.echo(f"queued a re-run of {rerun.label} (seed {rerun.seed})")
        if settings.seed_configs:
            try:
                queued = enqueue_report_runs(study, space.max_epochs, space)
            except SpaceError as error:
                reason = str(error).splitlines()[0]
                progress.echo(f"the report's configurations are not in this space ({reason})")
            else:
                if queued:
                    progress.echo(
                        f"queued the report's {queued} configurations as the first trials"
                    )
    if settings.jobs == 1:
        run_worker(settings, settings.trials, 0, root, image_size)
    else:
        prepare_data(root, image_size, progress.echo)
        _run_workers(settings, root, image_size)
    return optuna.load_study(study_name=settings.study_name, storage=storage)


def run_worker(
    settings: OptimizeSettings, trials: int, worker: int, root: Path, image_size: int
) -> None:
    """One worker: load the data onto the device once, then run `trials` trials."""
    progress = Progress(f"[worker {worker}] " if settings.jobs > 1 else "")
    signal.signal(signal.SIGTERM, _interrupt)  # `kill`, shutdown: stop like Ctrl-C
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say it better
    # Optuna logs every failed trial with its traceback; Progress prints the reason instead
    # (an unexpected error still ends the run with its traceback: that is a bug to report).
    logging.getLogger("optuna.study._optimize").setLevel(logging.ERROR)
    if settings.jobs > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // settings.jobs))
    device = resolve_device(settings.device)
    configure(device)
    precision = choose_precision(settings.precision, device, image_size)
    data = load_study_data(
        root, image_size, device, val_fraction=settings.val_fraction, seed=settings.seed
    )
    validation = f"{len(data.val)} validation and " if data.val is not None else ""
    progress.echo(
        f"training on {device} in {precision}: {data.description}, "
        f"{len(data.train)} training, {validation}{len(data.test)} test images"
    )
    progress.eval_split = data.eval_split
    storage = settings.open_storage()
    space = resolve_space(settings.space, max_epochs=settings.max_epochs)
    key = _data_key(settings, root, image_size)
    with storage_lock(parse_storage_url(settings.storage), f"study-{settings.study_name}"):
        study = open_study(settings, storage, space, key)
        # Every worker ever started on this study gets its own ordinal, and from it its own
        # sampler seed: workers started together must not draw the same random start-up
        # points, and a resumed run must not repeat those of the run before it.
        ordinal = study.user_attrs.get(WORKERS_ATTR, 0)
        study.set_user_attr(WORKERS_ATTR, ordinal + 1)
    sampler_seed = int(hashlib.sha256(f"{settings.seed}/{ordinal}".encode()).hexdigest()[:8], 16)
    study.sampler = make_sampler(space, sampler_seed)
    artifact_store = open_artifact_store(settings.artifact_dir)
    objective = Objective(
        space=space,
        data=data,
        precision=precision,
        seed=settings.seed,
        artifact_store=artifact_store,
        resume_store=ResumeStore(settings.artifact_dir, settings.study_name),
        progress=progress,
        trial_ending=TrialCurvesPublisher(artifact_store),
        compile=settings.compile,
    )
    try:
        study.optimize(
            objective,
            n_trials=trials,
            timeout=settings.timeout,
            catch=(TrialFailed,),
            callbacks=[progress.trial_finished, StudyNoteRefresher()],
            gc_after_trial=False,
        )
    except KeyboardInterrupt:
        # Optuna has marked the running trial FAIL; queue it again so that the next run
        # resumes it from its last epoch's checkpoint.
        if objective.current_trial is not None:
            requeue(study, objective.current_trial)
        raise


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


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
    config = to_config(best.user_attrs.get("config") or best.params)
    attrs, nan = best.user_attrs, float("nan")
    figures = (
        f"test loss {attrs.get('test_loss', best.value):.4f}, "
        f"test accuracy {attrs.get('test_accuracy', nan):.2%}"
    )
    if attrs.get(EVAL_SPLIT_ATTR) == "val":  # the objective is validation loss; test comes last
        figures = (
            f"validation loss {best.value:.4f}, "
            f"validation accuracy {attrs.get('val_accuracy', nan):.2%}; {figures}"
        )
    return f"best trial {best.number}: {describe_config(config)}\n  {figures}"
