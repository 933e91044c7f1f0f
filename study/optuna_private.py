"""Every place this project reaches into Optuna's or optuna-dashboard's private API, and why.

Each function says which public API falls short. Kept in one module so that an Optuna upgrade
has one file to check (pinned: optuna >=5.0,<6 and optuna-dashboard 0.21).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import FrozenTrial

# Keys of Optuna's own system attrs that we read or write.
RETRY_HISTORY_KEY = "retry_history"  # RetryHeartbeatStaleTrialCallback: earlier trial numbers
FAILED_TRIAL_KEY = "failed_trial"  # the same callback: the first trial of the chain
FIXED_PARAMS_KEY = "fixed_params"  # study.enqueue_trial: the params a queued trial will take


def retry_history(trial: optuna.Trial) -> list[int]:
    """Numbers of the earlier trials a live trial retries, oldest first (empty for a new one).

    The live Trial has no public view of its system attrs, where Optuna's retry callback keeps
    the history; RetryFailedTrialCallback.retry_history takes only a FrozenTrial.
    """
    attrs = trial.storage.get_trial_system_attrs(trial._trial_id)
    return attrs.get(RETRY_HISTORY_KEY, [])


def retry_system_attrs(failed: FrozenTrial) -> dict[str, Any]:
    """The system attrs of a queued retry of `failed`, exactly as Optuna's
    RetryHeartbeatStaleTrialCallback writes them; that callback queues only trials whose
    heartbeat went stale, and there is no public way to queue a retry of a trial we ended."""
    history = [*failed.system_attrs.get(RETRY_HISTORY_KEY, []), failed.number]
    attrs = {**failed.system_attrs, RETRY_HISTORY_KEY: history}
    attrs.setdefault(FAILED_TRIAL_KEY, failed.number)
    return attrs


def queued_params(trial: FrozenTrial) -> dict[str, Any]:
    """The params a queued (WAITING) trial will run with: enqueue_trial keeps them in a system
    attr until the trial starts, and FrozenTrial.params is empty until then."""
    return dict(trial.system_attrs.get(FIXED_PARAMS_KEY) or {})


def trial_artifact_url(trial: optuna.Trial, artifact_id: str) -> str:
    """Where optuna-dashboard serves a trial's artifact: by the storage's internal study and
    trial ids, which Optuna does not expose publicly (numbers are not ids)."""
    return f"/artifacts/{trial.study._study_id}/{trial._trial_id}/{artifact_id}"


def stored_plotly_figure(study: optuna.Study, figure_id: str) -> str | None:
    """The JSON of a figure saved with optuna_dashboard.save_plotly_graph_object, as stored:
    optuna-dashboard has a public save but no public read, and Study has no public view of its
    system attrs."""
    from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

    system_attrs = study._storage.get_study_system_attrs(study._study_id)
    return get_plotly_graph_objects(system_attrs).get(figure_id)


def artifact_path(store: FileSystemArtifactStore, artifact_id: str) -> Path:
    """Where the file-system artifact store keeps an artifact: its write() opens the final
    path directly, so an atomic write has to know it."""
    return Path(store._get_filepath(artifact_id))


def quiet_failed_trial_logs() -> None:
    """Stop Optuna logging every failed trial with its traceback (we print the reason instead;
    an unexpected error still ends the run with its traceback). Optuna logs them from its
    private study._optimize module, below the level optuna.logging controls as a whole."""
    logging.getLogger("optuna.study._optimize").setLevel(logging.ERROR)


def stale_trial_numbers(study: optuna.Study) -> set[int]:
    """Numbers of the study's RUNNING trials whose heartbeat is older than the storage's grace
    period, by the storage's own check. create_study and load_study wrap an RDBStorage in
    Optuna's caching layer (_CachedStorage), which forwards the heartbeat methods: the check
    goes through whichever the study holds. Optuna's public fail_stale_trials runs the same
    check but fails the trials at once, where no reason can be stored on them any more (a
    finished trial takes no attrs); we fail them ourselves first, with one."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    storage = study._storage
    if not is_heartbeat_enabled(storage):
        return set()
    stale_ids = set(storage._get_stale_trial_ids(study._study_id))
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    return {t.number for t in running if t._trial_id in stale_ids}


def set_running_trial_attr(study: optuna.Study, trial: FrozenTrial, key: str, value: Any) -> None:
    """Set a user attr of another worker's RUNNING trial: the public API sets attrs only
    through the live Trial object its own worker holds."""
    study._storage.set_trial_user_attr(trial._trial_id, key, value)


def heartbeat_age_s(study: optuna.Study, trial: FrozenTrial) -> float | None:
    """Seconds since a RUNNING trial's last heartbeat, by the database's clock (None when it
    has none): RDBStorage keeps heartbeats in a table of its own, with no public reader."""
    storage = _rdb_storage(study._storage)
    if storage is None:
        return None
    import sqlalchemy

    query = sqlalchemy.text(
        "SELECT heartbeat, CURRENT_TIMESTAMP FROM trial_heartbeats WHERE trial_id = :id"
    )
    with storage.engine.connect() as connection:
        row = connection.execute(query, {"id": trial._trial_id}).first()
    if row is None:
        return None
    beat, now = (_as_datetime(value) for value in row)
    return (now - beat).total_seconds()


def _rdb_storage(storage: optuna.storages.BaseStorage) -> optuna.storages.RDBStorage | None:
    """The RDBStorage under Optuna's caching layer (or the storage itself), or None."""
    if isinstance(storage, optuna.storages._CachedStorage):
        storage = storage._backend
    return storage if isinstance(storage, optuna.storages.RDBStorage) else None


def _as_datetime(value: Any):
    """SQLite returns timestamps as text, PostgreSQL as datetimes."""
    import datetime

    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=None)
    return datetime.datetime.fromisoformat(str(value)).replace(tzinfo=None)


def heartbeat(study: optuna.Study, trial: optuna.Trial) -> contextlib.AbstractContextManager:
    """Optuna's heartbeat thread for a trial trained outside study.optimize (ask and tell, as
    fused trials are): Optuna starts one only inside study.optimize, and its helper is private."""
    from optuna.storages._heartbeat import get_heartbeat_thread

    return get_heartbeat_thread(trial._trial_id, study._storage)
