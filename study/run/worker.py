"""One worker: the data on the device once, then its share of the trials; and `--jobs N` of them.

Workers are separate processes (`--jobs N`) that each load the data once and run their share of
the trials against the same storage; Optuna's storage is the only thing they share. The TPE
sampler runs with the constant-liar strategy, so concurrent workers do not all try one point.
With `--jobs 1` the one worker runs in the command's own process, on the study it set up.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import warnings

import optuna
import torch

from catdog.device import choose_precision, configure
from catdog.errors import USER_ERRORS
from study.data.splits import DeviceSplits, load_splits
from study.optuna_private import quiet_failed_trial_logs
from study.results.dashboard import StudyNoteRefresher, TrialCurvesPublisher
from study.run.objective import Objective, TrialFailed
from study.run.plan import RunPlan
from study.run.progress import Progress
from study.run.study import make_pruner, make_sampler, worker_seed
from study.store.artifacts import open_artifact_store
from study.store.resume import ResumeStore, requeue
from study.store.storage import open_storage


def run_worker(plan: RunPlan, worker: int, study: optuna.Study | None = None) -> None:
    """Run worker `worker`'s share of the plan's trials.

    study: the study as set up in this process (`--jobs 1`); None in a worker process, which
    opens the storage and loads the study once, with its own seeded sampler.
    """
    progress = Progress(f"[worker {worker}] " if plan.jobs > 1 else "")
    signal.signal(signal.SIGTERM, _interrupt)  # `kill`, shutdown: stop like Ctrl-C
    _quiet_optuna()
    if plan.jobs > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // plan.jobs))
    configure(plan.device)
    precision = choose_precision(plan.precision, plan.device, plan.source.image_size)
    splits = load_splits(plan.source, plan.device, val_fraction=plan.val_fraction, seed=plan.seed)
    progress.echo(f"training on {plan.device} in {precision}: {_describe_splits(splits)}")
    progress.eval_split = splits.eval_split
    if study is None:
        study = _load_study(plan, worker)
    artifact_store = open_artifact_store(plan.artifact_dir)
    objective = Objective(
        space=plan.space,
        splits=splits,
        precision=precision,
        seed=plan.seed,
        artifact_store=artifact_store,
        resume_store=ResumeStore(plan.artifact_dir, plan.study_name),
        progress=progress,
        trial_ending=TrialCurvesPublisher(artifact_store),
        compile=plan.compile,
    )
    try:
        study.optimize(
            objective,
            n_trials=plan.shares[worker],
            timeout=plan.timeout,
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


def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say it better
    quiet_failed_trial_logs()  # Progress prints each failed trial's reason


def _describe_splits(splits: DeviceSplits) -> str:
    validation = f"{len(splits.val)} validation and " if splits.val is not None else ""
    return (
        f"{splits.description}, {len(splits.train)} training, {validation}"
        f"{len(splits.test)} test images"
    )


def _load_study(plan: RunPlan, worker: int) -> optuna.Study:
    """The study the runner set up, with this worker's seeded sampler (see worker_seed)."""
    storage = open_storage(
        plan.storage, heartbeat_interval=plan.heartbeat, grace_period=plan.grace_period
    )
    return optuna.load_study(
        study_name=plan.study_name,
        storage=storage,
        sampler=make_sampler(plan.space, worker_seed(plan.seed, plan.first_worker + worker)),
        pruner=make_pruner(plan.pruner, plan.space.max_epochs),
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_workers(plan: RunPlan) -> None:
    """Start one process per share of the plan's trials and wait for all of them."""
    context = multiprocessing.get_context("spawn")  # no forked CUDA or SQLite state
    workers = [
        context.Process(target=_worker_process, args=(plan, i)) for i in range(len(plan.shares))
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


def _worker_process(plan: RunPlan, worker: int) -> None:
    """A `--jobs` worker process: a user's error is one line, Ctrl-C exit status 130."""
    warnings.formatwarning = lambda message, *_args, **_kw: f"warning: {message}\n"
    try:
        run_worker(plan, worker)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except USER_ERRORS as error:
        print(f"[worker {worker}] error: {error}", flush=True)
        raise SystemExit(1) from None
