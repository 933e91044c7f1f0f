"""Trials queued before any is sampled: the report's four configurations, and re-runs.

A new study runs the report's four hand-run configurations first, so that the study's own
figures for exactly the report's set-ups sit beside the search's. A re-run queues the
configuration and seed an earlier trial trained with (every trial stores its whole TrainConfig
and its seed), in its own study or another, with params that make this study's space give that
same config. Both kinds always run to their last epoch: they are references, never pruned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from catdog.config import TrainConfig
from catdog.errors import CatdogError
from catdog.paper import PAPER_RUNS
from study.attrs import CONFIG_ATTR, PAPER_RUN_ATTR, RERUN_ATTR, SEED_ATTR
from study.space.dimensions import SearchSpace, SpaceError
from study.store.studies import find_trial


class RerunError(CatdogError, ValueError):
    """A trial that cannot be re-run as asked; the message says why."""


def enqueue_paper_runs(
    study: optuna.Study, max_epochs: int, space: SearchSpace | None = None
) -> int:
    """Queue the report's four runs that the study does not hold yet; returns how many.

    With a space, each run gets the params that give the report's whole recipe in that space
    (batch 128, constant lr, ...), not just its four; SpaceError when the space lacks it.
    """
    # A failed run (interrupted, diverged) is queued again; any other state counts as held.
    alive = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    trials = study.get_trials(deepcopy=False, states=alive)
    existing = {t.user_attrs.get(PAPER_RUN_ATTR) for t in trials}
    missing = [run for run in PAPER_RUNS if run.label not in existing]
    params = [run.params(max_epochs) for run in missing]
    if space is not None:  # all checked before any is queued
        params = [space.params_for(TrainConfig(**p)) for p in params]
    for run, run_params in zip(missing, params, strict=True):
        study.enqueue_trial(run_params, user_attrs={PAPER_RUN_ATTR: run.label})
    return len(missing)


@dataclass(frozen=True)
class Rerun:
    label: str  # "STUDY trial N"
    params: dict[str, Any]  # the Optuna params that give the trial's config in this space
    seed: int

    def enqueue(self, study: optuna.Study) -> int | None:
        """Queue the re-run; or, when one is already queued, running or resuming (a re-run
        interrupted and queued again), leave it and return that trial's number."""
        waiting = (TrialState.WAITING, TrialState.RUNNING)
        for trial in study.get_trials(deepcopy=False, states=waiting):
            if trial.user_attrs.get(RERUN_ATTR) == self.label:
                return trial.number
        study.enqueue_trial(self.params, user_attrs={SEED_ATTR: self.seed, RERUN_ATTR: self.label})
        return None


def plan_reruns(
    storage: optuna.storages.BaseStorage,
    study_name: str,
    numbers: tuple[int, ...],
    space: SearchSpace,
) -> list[Rerun]:
    """Re-runs of trials `numbers` of study `study_name` in a study of `space`.

    Everything is checked before anything is queued: RerunError for a missing study, trial or
    stored config; SpaceError, one line per setting, when `space` cannot give a trial's config.
    """
    reruns = []
    for number in numbers:
        trial = _source_trial(storage, study_name, number)
        label = f"{study_name} trial {number}"
        config = TrainConfig.from_dict(trial.user_attrs[CONFIG_ATTR])
        try:
            params = space.params_for(config)
        except SpaceError as error:
            raise SpaceError(f"cannot re-run {label} in this space:\n{error}") from None
        reruns.append(Rerun(label, params, int(trial.user_attrs[SEED_ATTR])))
    return reruns


def _source_trial(
    storage: optuna.storages.BaseStorage, study_name: str, number: int
) -> FrozenTrial:
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        raise RerunError(f"no study named {study_name!r} to re-run trial {number} from") from None
    trial = find_trial(study, number)
    if trial is None:
        raise RerunError(f"study {study_name!r} has no trial {number}")
    if CONFIG_ATTR not in trial.user_attrs or SEED_ATTR not in trial.user_attrs:
        raise RerunError(
            f"trial {number} of study {study_name!r} stores no training config and seed "
            f"({trial.state.name.lower()} before training started?): it cannot be re-run"
        )
    return trial
