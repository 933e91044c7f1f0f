"""Run a study: set it up once, then train its trials in this process or in `--jobs` workers."""

from __future__ import annotations

import optuna

from study.data.splits import cache_data
from study.run.progress import Progress
from study.run.setup import set_up_run
from study.run.worker import run_worker, run_workers
from study.settings import OptimizeSettings


def run_optimize(settings: OptimizeSettings, progress: Progress | None = None) -> optuna.Study:
    """Run settings.trials trials (over settings.jobs workers); returns the study.

    Raises the CatdogError of the first option that cannot be used, before anything trains.
    """
    progress = progress or Progress()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say it better
    plan, study = set_up_run(settings, progress)
    if plan.jobs == 1:
        run_worker(plan, 0, study)
    else:
        cache_data(plan.source, progress.echo)  # decoded once here, not by every worker at once
        run_workers(plan)
    return study
