"""A study database that stops answering for a while: the run waits for it, saying so once,
and past --storage-timeout stops in one line; the next run takes the trial over.

The PostgreSQL tests stop and start the test server mid-trial (.ci/postgres.sh exports the
script that does it); the others make Optuna's storage fail as a dropped connection does.
"""

import os
import sqlite3
import subprocess

import optuna
import pytest
import sqlalchemy.exc
from optuna.storages import RDBStorage
from optuna.trial import TrialState

import study.store.retry as retry_module
from study.attrs import RESUME_ATTR
from study.store.failures import StorageUnreachable
from study.store.storage import open_storage

from ..workers import start_worker, trials_of, wait_all, wait_for, wait_for_checkpoint

POSTGRES_URL = os.environ.get("CATDOG_TEST_POSTGRES_URL")
POSTGRES_CTL = os.environ.get("CATDOG_TEST_POSTGRES_CTL")  # `CTL stop`, `CTL start`
needs_a_server_to_restart = pytest.mark.skipif(
    not (POSTGRES_URL and POSTGRES_CTL),
    reason="set CATDOG_TEST_POSTGRES_URL and CATDOG_TEST_POSTGRES_CTL (.ci/postgres.sh does)",
)


def _dropped_connection() -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError(
        "SELECT 1",
        {},
        sqlite3.OperationalError("server closed the connection"),
        connection_invalidated=True,
    )


@pytest.fixture
def no_waiting(monkeypatch):
    monkeypatch.setattr(retry_module, "FIRST_WAIT_S", 0.001)
    monkeypatch.setattr(retry_module, "MAX_WAIT_S", 0.001)


def test_a_dropped_connection_is_waited_for_and_said_once(tmp_path, monkeypatch, no_waiting):
    said = []
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}", timeout_s=600, say=said.append)
    optuna.create_study(storage=storage, study_name="catdog")
    answer = RDBStorage.get_all_studies
    failures = iter(range(3))

    def drops_three_times(self):
        if next(failures, None) is not None:
            raise optuna.exceptions.StorageInternalError("commit") from _dropped_connection()
        return answer(self)

    monkeypatch.setattr(RDBStorage, "get_all_studies", drops_three_times)
    assert [s.study_name for s in storage.get_all_studies()] == ["catdog"]
    assert said == [
        f"the study database sqlite:///{tmp_path / 'study.db'} does not answer (server closed the "
        "connection): waiting up to 600 s for it (--storage-timeout)"
    ]


def test_past_the_timeout_it_is_one_error_and_later_calls_do_not_wait(
    tmp_path, monkeypatch, no_waiting
):
    said = []
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}", timeout_s=0.05, say=said.append)

    def never_answers(self):
        raise _dropped_connection()

    monkeypatch.setattr(RDBStorage, "get_all_studies", never_answers)
    with pytest.raises(StorageUnreachable) as raised:
        storage.get_all_studies()
    assert str(raised.value).startswith(
        f"the study database sqlite:///{tmp_path / 'study.db'} did not answer for 0.05 s "
        "(server closed the connection): the next run takes over a trial this one left running"
    )
    said.clear()
    with pytest.raises(StorageUnreachable):
        storage.get_all_studies()  # tried once: the run is ending
    assert said == []
    storage.record_heartbeat(0)  # on Optuna's heartbeat thread: never raises


def _worker(folder, log, tiny_dataset, study_name, *extra):
    """One trial of the study `study_name` on PostgreSQL, as a user's worker process."""
    where = ["--storage", POSTGRES_URL, "--study-name", study_name]
    one_trial = ["--trials", 1, "--max-epochs", 12, "--no-seed-configs", "--pruner", "none"]
    on_cpu = ["--data", tiny_dataset, "--device", "cpu", "--precision", "fp32"]
    return start_worker(folder, log, *where, *one_trial, *on_cpu, *extra)


@pytest.fixture
def long_trial():
    """A PostgreSQL study whose next trial trains 12 epochs; deleted afterwards."""
    url = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://")
    name = f"outage-{os.getpid()}"
    study = optuna.create_study(storage=url, study_name=name)
    study.enqueue_trial({"optimizer": "adam", "lr": 1e-3, "shuffle": True, "epochs": 12})
    yield url, name
    subprocess.run([POSTGRES_CTL, "start"], capture_output=True, check=False)  # if left down
    optuna.delete_study(study_name=name, storage=url)


def _server(action: str) -> None:
    subprocess.run([POSTGRES_CTL, action], capture_output=True, check=True)


@needs_a_server_to_restart
def test_a_database_restart_mid_trial_is_waited_for(in_tmp, tiny_dataset, long_trial):
    url, name = long_trial
    worker = _worker(in_tmp, "worker.log", tiny_dataset, name)
    log = in_tmp / "worker.log"
    wait_for_checkpoint(url, 2, worker, name)
    _server("stop")
    wait_for(
        lambda: worker.poll() is not None or "does not answer" in log.read_text(),
        what="the run to wait",
    )
    _server("start")
    assert wait_all([worker]) == [0], log.read_text()
    output = log.read_text()
    assert "Traceback" not in output and "Error" not in output
    waiting = [line for line in output.splitlines() if "does not answer" in line]
    assert len(waiting) == 1 and "waiting up to 60 s for it (--storage-timeout)" in waiting[0]
    assert [t.state for t in trials_of(url, name)] == [TrialState.COMPLETE]


@needs_a_server_to_restart
def test_a_longer_outage_stops_the_run_and_the_next_run_takes_the_trial_over(
    in_tmp, tiny_dataset, long_trial
):
    url, name = long_trial
    worker = _worker(in_tmp, "first.log", tiny_dataset, name, "--storage-timeout", 1)
    wait_for_checkpoint(url, 2, worker, name)
    _server("stop")
    assert wait_all([worker]) == [1]
    output = (in_tmp / "first.log").read_text()
    assert "Traceback" not in output
    (error,) = [line for line in output.splitlines() if line.startswith("Error:")]
    assert error.startswith(f"Error: the study database {POSTGRES_URL} did not answer for 1 s")
    assert "the next run takes over a trial this one left running" in error

    _server("start")
    (left,) = trials_of(url, name)
    assert left.state == TrialState.RUNNING
    epoch = left.user_attrs[RESUME_ATTR]["epoch"]
    again = _worker(in_tmp, "second.log", tiny_dataset, name)
    assert wait_all([again]) == [0]
    output = (in_tmp / "second.log").read_text()
    assert "trial 0: its worker (process" in output and "ended without finishing it" in output
    assert f"trial 1 resumes trial 0 from its checkpoint after epoch {epoch}" in output
    assert [t.state for t in trials_of(url, name)] == [TrialState.FAIL, TrialState.COMPLETE]
