"""One worker: the data on the device once, then its share of the trials; and `--jobs N` of them.

Workers are separate processes (`--jobs N`) that each load the data once and run their share of
the trials against the same storage; Optuna's storage is the only thing they share. The TPE
sampler runs with the constant-liar strategy, so concurrent workers do not all try one point.
With `--jobs 1` the one worker runs in the command's own process, on the study it set up.

Stopping (see signals.py) reaches every worker: the command forwards the signal that stopped it
to each worker process, and a worker whose command ended without a word stops by itself.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import multiprocessing
import os
import queue
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from multiprocessing import resource_tracker
from multiprocessing.sharedctypes import Synchronized
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial

from catdog.classes import is_report_pair
from catdog.cores import usable_cores
from catdog.device import configure
from catdog.errors import USER_ERRORS, CatdogError
from study.data.splits import DeviceSplits, load_splits
from study.optuna_private import quiet_failed_trial_logs
from study.results.dashboard import StudyNoteRefresher, TrialCurvesPublisher
from study.run.background import Background
from study.run.display import Display, QueueDisplay, replay
from study.run.fused import run_fused_trials
from study.run.objective import Objective
from study.run.plan import RunPlan
from study.run.progress import Progress
from study.run.reasons import TrialFailed
from study.run.signals import STOP_SIGNALS, Stopped, StopSignals, silence_stdout
from study.run.study import make_pruner, make_sampler, worker_seed
from study.run.takeover import take_over_dead_trials, taken_over
from study.store.artifacts import open_artifact_store
from study.store.failures import storage_failure
from study.store.resume import ResumeStore, requeue
from study.store.storage import open_storage

STOPPED_EVENT = "stopped"  # a worker's last report: the trials it stopped and queued again
# How often a worker process checks that its command still runs and has not asked it to stop.
PARENT_POLL_S = 0.5


class WorkersFailed(CatdogError, RuntimeError):
    """Some `--jobs` workers ended with an error; each printed its own line."""


def run_worker(
    plan: RunPlan,
    worker: int,
    stops: StopSignals,
    display: Display,
    study: optuna.Study | None = None,
) -> None:
    """Run worker `worker`'s share of the plan's trials, reporting to `display`.

    study: the study as set up in this process (`--jobs 1`); None in a worker process, which
    opens the storage and loads the study once.
    """
    prefix = f"[worker {worker}] " if plan.jobs > 1 else ""
    progress = Progress(prefix, stops=stops, display=display, verbose=plan.verbose)
    _quiet_optuna(plan.verbose)
    if plan.jobs > 1:
        torch.set_num_threads(max(1, usable_cores() // plan.jobs))
    configure(plan.device)
    splits = load_splits(plan.source, plan.device, val_fraction=plan.val_fraction, seed=plan.seed)
    progress.echo(f"training on {plan.device} in {plan.precision}: {_describe(splits)}")
    progress.eval_split = splits.eval_split
    if study is None:
        study = _load_study(plan, worker, progress.echo)
    artifact_store = open_artifact_store(plan.artifact_dir)
    objective = Objective(
        space=plan.space,
        splits=splits,
        precision=plan.precision,
        seed=plan.seed,
        artifact_store=artifact_store,
        resume_store=ResumeStore(plan.artifact_dir, plan.study_name),
        progress=progress,
        trial_ending=TrialCurvesPublisher(artifact_store),
        compile=plan.compile,
        stops=stops,
        ranks_by=plan.objective,
    )

    def take_over(study: optuna.Study, trial: FrozenTrial) -> None:
        take_over_dead_trials(study, plan.grace_period, progress.echo)

    # The study note reads every trial and grows with the study: it is rewritten beside the
    # training (once for trials that end together), and whole before the worker ends.
    notes, refresh = Background.for_device(plan.device), StudyNoteRefresher()

    def rewrite_note(study: optuna.Study, trial: FrozenTrial) -> None:
        notes.submit_once("study note", functools.partial(refresh, study, trial))

    # After each trial: how it ended, the dashboard's study note, dead workers' trials.
    callbacks = [progress.trial_finished, rewrite_note, take_over]
    # A trial gone stale while this worker loaded its data is taken over here, with its
    # reason, before study.optimize's own sweep (fail_stale_trials) could fail it without one.
    take_over_dead_trials(study, plan.grace_period, progress.echo)
    stops.check()
    try:
        if plan.fuse > 1:
            run_fused_trials(study, objective, plan, plan.shares[worker], callbacks)
        else:
            _run_trials(study, objective, plan, plan.shares[worker], callbacks)
    except BaseException as error:
        # Optuna may have put its own error in front of the storage's (see failures.py);
        # then the study note cannot be written either.
        if isinstance(error, Exception) and (failure := storage_failure(error)) is not None:
            raise failure from None
        # A stop or an error told its trials without the callbacks: the note shows them too.
        notes.submit_once("study note", functools.partial(refresh, study))
        raise
    finally:
        notes.close()


def _run_trials(
    study: optuna.Study,
    objective: Objective,
    plan: RunPlan,
    trials: int,
    callbacks: list[Callable[[optuna.Study, FrozenTrial], None]],
) -> None:
    """study.optimize for `trials` trials, going on after a trial another worker took over."""
    progress = objective.progress
    deadline = None if plan.timeout is None else time.monotonic() + plan.timeout
    ended = []  # trials of this worker that ended, one way or another
    stops = objective.stops

    def count(study: optuna.Study, trial: FrozenTrial) -> None:
        ended.append(trial.number)

    def check_stop(study: optuna.Study, trial: FrozenTrial) -> None:
        if stops is not None:
            stops.check()  # one held back as the trial ended: it is told, none running now

    while len(ended) < trials:
        timeout = None if deadline is None else deadline - time.monotonic()
        if timeout is not None and timeout <= 0:
            return
        try:
            # Held back while Optuna asks for a trial, and after each trial until the next
            # (see Objective.__call__): the objective then raises it on a trial in hand, or
            # check_stop once a trial is told, or the block's end after the last.
            with objective.held_stops():
                study.optimize(
                    objective,
                    n_trials=trials - len(ended),
                    timeout=timeout,
                    catch=(TrialFailed,),
                    callbacks=[count, *callbacks, check_stop],
                    gc_after_trial=False,
                )
            return
        except KeyboardInterrupt as stop:
            # Optuna has marked the interrupted trial FAIL (its reason is stored); queue it
            # again so that the next run resumes it from its last epoch's checkpoint.
            if objective.interrupted is not None:
                requeue(study, objective.interrupted)
                if isinstance(stop, Stopped):
                    stop.trials.append(objective.interrupted)
            raise
        except (ValueError, optuna.exceptions.UpdateFinishedTrialError) as error:
            taken = objective.current_trial
            if not taken_over(study, taken, error) or taken in ended:
                raise
            # Another worker found no heartbeat from this one for the grace period, marked
            # the trial FAIL and queued it again: that copy goes on from its checkpoint.
            progress.echo(
                f"trial {taken} was taken over by another worker (no heartbeat from this one "
                f"for {plan.grace_period} s): going on with the next trial"
            )
            progress.trial_lost(taken)
            ended.append(taken)


def _quiet_optuna(verbose: bool) -> None:
    # Our own lines say it better, unless --verbose asks for Optuna's too.
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.WARNING)
    quiet_failed_trial_logs()  # Progress prints each failed trial's reason


def _describe(splits: DeviceSplits) -> str:
    validation = f"{len(splits.val)} validation and " if splits.val is not None else ""
    classes = "" if is_report_pair(splits.class_names) else f" of {', '.join(splits.class_names)}"
    return (
        f"{splits.description}, {len(splits.train)} training, {validation}"
        f"{len(splits.test)} test images{classes}"
    )


def _load_study(plan: RunPlan, worker: int, say: Callable[[str], None]) -> optuna.Study:
    """The study the runner set up, with this worker's seeded sampler (see worker_seed)."""
    storage = open_storage(
        plan.storage,
        heartbeat_interval=plan.heartbeat,
        grace_period=plan.grace_period,
        timeout_s=plan.storage_timeout,
        say=say,
    )
    return optuna.load_study(
        study_name=plan.study_name,
        storage=storage,
        sampler=make_sampler(plan.space, worker_seed(plan.seed, plan.first_worker + worker)),
        pruner=make_pruner(plan.pruner, plan.space.max_epochs),
    )


def run_workers(plan: RunPlan, progress: Progress, stops: StopSignals) -> None:
    """Start one process per share of the plan's trials and wait for all of them; what they
    report comes here through a queue and goes to `progress`'s display.

    Raises Stopped when this command is told to stop (after every worker has stopped and
    queued its trial again) or when a worker was; WorkersFailed when a worker hit an error
    or was killed.
    """
    context = multiprocessing.get_context("spawn")  # no forked CUDA or SQLite state
    # multiprocessing's resource tracker process (for the shared number and the queue below)
    # ignores SIGINT and SIGTERM but not SIGHUP: started with SIGHUP blocked, which it keeps,
    # a closed terminal no longer kills it (its replacement printed tracebacks).
    with _blocked([signal.SIGHUP]):
        resource_tracker.ensure_running()
    # The stop goes through a shared number the workers poll, not a multiprocessing.Event:
    # Event.set() waits for every process waiting on it to wake, and one that finished its
    # share and exited while waiting never does (the command then hung on Ctrl-C).
    stop_signal, reports = context.Value("i", 0), context.Queue()
    args = (stop_signal, os.getpid(), reports)
    processes = [
        context.Process(target=_worker_process, args=(plan, i, *args), name=f"worker {i}")
        for i in range(len(plan.shares))
    ]
    stopped_trials: list[int] = []  # what the workers stopped and queued again
    shown = threading.Thread(
        target=_show_reports, args=(reports, progress, processes, stopped_trials)
    )
    try:
        # A stop while the workers start is held until all of them can be told. Each starts
        # with the stop signals blocked (inherited), until its own handlers are in place: one
        # that arrives meanwhile (a Ctrl-C reaches the whole process group) waits for them.
        with stops.held():
            with _blocked(STOP_SIGNALS):
                for process in processes:
                    process.start()
            shown.start()
        for process in processes:
            process.join()
        shown.join()
    except Stopped as stopped:
        stop_signal.value = stopped.signum
        for process in processes:
            if process.is_alive():
                os.kill(process.pid, stopped.signum)
        for process in processes:
            if process.pid is not None:
                process.join()
        if shown.ident is not None:
            shown.join()
        stopped.workers, stopped.trials = True, stopped_trials
        raise
    _raise_for(processes, stopped_trials)


@contextlib.contextmanager
def _blocked(signals: list[int] | tuple[int, ...]) -> Iterator[None]:
    """Block `signals` in this thread for the block: processes started meanwhile inherit the
    blocked set; a signal that arrives meanwhile is delivered when the block ends."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _show_reports(
    reports: Any, progress: Progress, processes: list, stopped_trials: list[int]
) -> None:
    """Replay what the workers report on this command's display, until they have all ended;
    the trials a worker stopped go to `stopped_trials`.

    An output that was closed stops the run (SIGPIPE is one of the stop signals): the main
    thread then stops every worker."""
    while True:
        try:
            event = reports.get(timeout=0.2)
        except queue.Empty:
            # Every one polled (and a dead one reaped, so that its trial's process is gone
            # and the other workers take it over), not only up to the first alive.
            if not any([process.is_alive() for process in processes]):
                return
            continue
        if event[0] == STOPPED_EVENT:
            stopped_trials.extend(event[1])
            continue
        try:
            replay(event, progress.display)
        except OSError as error:
            if error.errno not in (errno.EPIPE, errno.EIO):
                raise
            silence_stdout()
            os.kill(os.getpid(), signal.SIGPIPE)


def _raise_for(processes: list[multiprocessing.Process], stopped_trials: list[int]) -> None:
    codes = [p.exitcode for p in processes]
    stopped = [code for code in codes if code is not None and code > 128]
    if stopped:
        stop = Stopped(stopped[0] - 128)
        stop.workers, stop.trials = True, stopped_trials
        raise stop
    failed = [(i, code) for i, code in enumerate(codes) if code != 0]
    if failed:
        raise WorkersFailed(
            f"{len(failed)} of {len(processes)} workers ended with an error: "
            + "; ".join(_how_it_ended(i, code) for i, code in failed)
        )


def _how_it_ended(worker: int, code: int | None) -> str:
    if code is not None and code < 0:  # killed by a signal no handler caught (kill -9, OOM)
        return f"worker {worker} was killed by {signal.Signals(-code).name}"
    return f"worker {worker} exited with status {code} (its error is above)"


def _worker_process(
    plan: RunPlan,
    worker: int,
    stop_signal: Synchronized,
    parent: int,
    reports: Any,
) -> None:
    """A `--jobs` worker process: a user's error is one line, a stop exits 128 + signal."""
    warnings.formatwarning = lambda message, *_args, **_kw: f"warning: {message}\n"
    with StopSignals() as stops:
        try:
            # Started with the stop signals blocked (see run_workers): handled from here on.
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            threading.Thread(target=_watch, args=(stops, stop_signal, parent), daemon=True).start()
            run_worker(plan, worker, stops, QueueDisplay(reports))
        except Stopped as stopped:
            reports.put((STOPPED_EVENT, stopped.trials))
            raise SystemExit(stopped.exit_code) from None
        except KeyboardInterrupt:
            raise SystemExit(130) from None
        except USER_ERRORS as error:
            print(f"[worker {worker}] error: {error}", flush=True)
            raise SystemExit(1) from None
        except Exception as error:
            if stops.stopped is None:
                raise
            # Stopping failed half-way (the storage refused to mark the trial): the trial stays
            # RUNNING and the next run on this machine takes it over at once (takeover.py).
            print(f"[worker {worker}] {stops.stopped.unfinished(error)}", flush=True)
            raise SystemExit(stops.stopped.exit_code) from None


def _watch(stops: StopSignals, stop_signal: Synchronized, parent: int) -> None:
    """Stop this worker when its command asks to (also for a signal that arrived while the
    worker started up, with signals ignored) or when the command is gone."""
    while not stop_signal.value:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent:
            stops.parent_ended = True
            os.kill(os.getpid(), signal.SIGHUP)
            return
    os.kill(os.getpid(), stop_signal.value)
