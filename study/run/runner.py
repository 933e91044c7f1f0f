"""Run a study: set it up once, then train its trials in this process or in `--jobs` workers."""

from __future__ import annotations

import optuna

from study.run.progress import Progress
from study.run.setup import set_up_run
from study.run.signals import StopSignals
from study.run.takeover import describe_still_running, take_over_dead_trials
from study.run.worker import WorkersFailed, run_worker, run_workers
from study.settings import OptimizeSettings


def run_optimize(
    settings: OptimizeSettings, stops: StopSignals | None = None, progress: Progress | None = None
) -> optuna.Study:
    """Run settings.trials trials (over settings.jobs workers); returns the study.

    stops: the stop signals in force (see signals.py); the command installs them. Raises the
    CatdogError of the first option that cannot be used, before anything trains, and Stopped
    when the run was told to stop (every running trial is then queued again).
    """
    stops = stops or StopSignals()
    progress = progress or Progress(stops=stops)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say it better
    plan, study = set_up_run(settings, progress)
    stops.check()
    if plan.jobs == 1:
        run_worker(plan, 0, stops, progress.display, study)
    else:
        try:
            run_workers(plan, progress, stops)
        except WorkersFailed:
            # A worker killed (kill -9, out of memory) left its trial RUNNING: queued again now.
            take_over_dead_trials(study, plan.grace_period, progress.echo)
            raise
    # A worker of another run may have died meanwhile; say what is left RUNNING, and when a
    # trial whose worker is silent will be taken over.
    take_over_dead_trials(study, plan.grace_period, progress.echo)
    for line in describe_still_running(study, plan.grace_period):
        progress.echo(line)
    return study
