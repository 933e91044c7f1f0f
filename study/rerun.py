"""Re-run a trial: queue the configuration and seed it trained with, in its study or another.

Every trial stores its whole TrainConfig (`config`) and its `seed`; a re-run is an enqueued
trial whose params make the study's search space give that same config, and whose `seed` user
attr the objective trains with. It runs to its last epoch: re-runs are never pruned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from catdog.config import TrainConfig
from study.space import SearchSpace, SpaceError

RERUN_ATTR = "rerun_of"  # "STUDY trial N": the trial whose configuration and seed this re-runs


class RerunError(ValueError):
    """A trial that cannot be re-run as asked; the message says why."""


@dataclass(frozen=True)
class Rerun:
    label: str  # "STUDY trial N"
    params: dict[str, Any]  # the Optuna params that give the trial's config in this space
    seed: int

    def enqueue(self, study: optuna.Study) -> None:
        study.enqueue_trial(self.params, user_attrs={"seed": self.seed, RERUN_ATTR: self.label})


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
        config = TrainConfig.from_dict(trial.user_attrs["config"])
        try:
            params = space.params_for(config)
        except SpaceError as error:
            raise SpaceError(f"cannot re-run {label} in this space:\n{error}") from None
        reruns.append(Rerun(label, params, int(trial.user_attrs["seed"])))
    return reruns


def _source_trial(
    storage: optuna.storages.BaseStorage, study_name: str, number: int
) -> FrozenTrial:
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        raise RerunError(f"no study named {study_name!r} to re-run trial {number} from") from None
    found = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    if not found:
        raise RerunError(f"study {study_name!r} has no trial {number}")
    trial = found[0]
    if "config" not in trial.user_attrs or "seed" not in trial.user_attrs:
        raise RerunError(
            f"trial {number} of study {study_name!r} stores no training config and seed "
            f"({trial.state.name.lower()} before training started?): it cannot be re-run"
        )
    return trial
