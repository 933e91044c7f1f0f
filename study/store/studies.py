"""Read an existing study and find its trials, for the commands that only read one."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial

from study.store.existing import open_existing_storage
from study.store.storage import StorageError, redacted_url


def load_existing_study(storage: str, study_name: str) -> optuna.Study:
    """The study, or a one-line StorageError: no study database there (nothing is created), or
    no study of that name, naming the studies that do exist."""
    opened = open_existing_storage(storage)
    try:
        return optuna.load_study(study_name=study_name, storage=opened)
    except KeyError:
        names = optuna.get_all_study_names(storage=opened)
        raise StorageError(
            f"no study named {study_name!r} in {redacted_url(storage)}; studies there: "
            f"{', '.join(names) or 'none'}"
        ) from None


def find_trial(study: optuna.Study, number: int) -> FrozenTrial | None:
    """Trial `number` of the study as stored now, or None when it has no such trial."""
    return next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
