"""A stop is raised where it does no harm: never inside the storage's own code."""

import os
import signal
import time

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState

import study.run.reporter as reporter_module
from study.run.signals import Stopped, StopSignals

from ..workers import trials_of


def _storage_code(body: str, name: str):
    """A function `name` whose code lives in a file of a storage library, as SQLAlchemy's does."""
    namespace = {"os": os, "signal": signal, "time": time}
    exec(compile(body, "/site-packages/sqlalchemy/engine/fake.py", "exec"), namespace)
    return namespace[name]


def test_a_stop_inside_a_storage_call_waits_until_the_call_returns():
    commit = _storage_code(
        "def commit(done):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(0.3)  # the signal arrives here, between two statements\n"
        "    done.append(True)\n",
        "commit",
    )
    done: list[bool] = []
    with StopSignals() as stops, pytest.raises(Stopped) as stopped:
        commit(done)
        assert done == [True]  # the call was not cut in two
        time.sleep(2)  # the stop is delivered again here, in our own code
    assert done == [True]
    assert stopped.value.exit_code == 143 and stops.stopped is stopped.value


def test_a_held_back_stop_raised_by_check_is_not_raised_again_later():
    commit = _storage_code(
        "def commit():\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(0.01)  # the signal arrives here: held back, signalled again in 50 ms\n",
        "commit",
    )
    with StopSignals() as stops:
        commit()
        with pytest.raises(Stopped):
            stops.check()  # the next epoch raises it first
        time.sleep(0.5)  # the copy signalled again arrives here: ignored, not raised twice


def test_a_stop_in_ordinary_code_is_raised_at_once_and_the_first_stop_wins():
    with StopSignals() as stops, pytest.raises(Stopped) as stopped:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(2)
    assert stopped.value.exit_code == 130
    with StopSignals() as stops:
        stops.stopped = Stopped(signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGINT)  # ignored: the first stop is under way
        time.sleep(0.2)
        with pytest.raises(Stopped) as stopped:
            stops.check()
    assert stopped.value.signum == signal.SIGHUP


def test_a_stop_that_cannot_mark_its_trial_ends_in_one_line(run_cli, tiny_dataset, monkeypatch):
    storage = "sqlite:///study.db"
    reporter = reporter_module.EpochReporter.__call__

    def stopped_after_epoch(self, *args, **kwargs):
        reporter(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)

    update = optuna.storages.RDBStorage.set_trial_state_values

    def locked(self, trial_id, state, values=None):
        if state == TrialState.FAIL:
            raise sqlalchemy.exc.OperationalError("BEGIN IMMEDIATE", {}, "database is locked")
        return update(self, trial_id, state, values)

    monkeypatch.setattr(reporter_module.EpochReporter, "__call__", stopped_after_epoch)
    monkeypatch.setattr(optuna.storages.RDBStorage, "set_trial_state_values", locked)
    result = run_cli(
        "optimize", "--data", tiny_dataset, "--storage", storage, "--trials", 1,
        "--max-epochs", 3, "--no-seed-configs", "--device", "cpu", "--precision", "fp32",
    )  # fmt: skip
    assert result.exit_code == 143, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("stopped by SIGTERM, but stopping failed (OperationalError:"), last
    assert "database is locked" in last and "resumes it at once" in last
    assert "Traceback" not in result.output
    # Never half-marked: the trial is left RUNNING for the next run to take over.
    assert [t.state for t in trials_of(storage)] == [TrialState.RUNNING]
