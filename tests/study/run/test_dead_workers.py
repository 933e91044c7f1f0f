"""A worker on another machine that died: its trial is taken over by its silent heartbeat, in a
plain run and in a fused one, and says why."""

import os
import time
import uuid

import optuna
import pytest
from optuna.trial import TrialState

import study.run.reporter as reporter_module
import study.run.worker as worker_module
from study.attrs import FAIL_REASON_ATTR, WORKER_ATTR
from study.run.takeover import WorkerProcess
from study.store.storage import open_storage, parse_storage_url

from ..helpers import fast_study_args
from ..workers import trials_of

STORAGE = "sqlite:///study.db"
POSTGRES_URL = os.environ.get("CATDOG_TEST_POSTGRES_URL")
GRACE_S = 2  # with a heartbeat every second, the shortest grace period allowed
ELSEWHERE = WorkerProcess("another-machine", 4242, "its-boot-id", "1234")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, in_tmp):
    """(--storage URL, study name) of a fresh study place, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield STORAGE, "catdog"
        return
    if not POSTGRES_URL:
        pytest.skip("set CATDOG_TEST_POSTGRES_URL to a PostgreSQL database (.ci/run starts one)")
    name = f"catdog-{uuid.uuid4().hex[:8]}"
    yield POSTGRES_URL, name
    optuna.delete_study(study_name=name, storage=_optuna_url(POSTGRES_URL))


def _optuna_url(url: str) -> str:
    return parse_storage_url(url).render_as_string(hide_password=False)


def _trial_of_a_worker_that_died_elsewhere(url: str = STORAGE, name: str = "catdog") -> int:
    """A RUNNING trial whose worker, on another machine, sent one heartbeat and died."""
    study = optuna.create_study(storage=_optuna_url(url), study_name=name)
    study.enqueue_trial({"optimizer": "adam", "lr": 1e-3, "shuffle": True, "epochs": 1})
    trial = study.ask()
    trial.set_user_attr(WORKER_ATTR, ELSEWHERE.to_attr())
    open_storage(url, heartbeat_interval=1).record_heartbeat(trial._trial_id)
    return trial.number


@pytest.mark.parametrize("fuse", [1, 2])
def test_a_dead_worker_on_another_machine_is_taken_over_during_a_run(
    run_cli, tiny_dataset, monkeypatch, fuse, store
):
    url, name = store
    dead = _trial_of_a_worker_that_died_elsewhere(url, name)
    reporter = reporter_module.EpochReporter.__call__

    def outlive_its_grace_period(self, metrics, state):
        # The run is under way, its setup done: the dead worker's heartbeat goes stale now.
        if self.trial.number == dead + 1 and metrics.epoch == 1:
            time.sleep(GRACE_S + 0.5)
        reporter(self, metrics, state)

    monkeypatch.setattr(reporter_module.EpochReporter, "__call__", outlive_its_grace_period)
    args = ["--storage", url, "--study-name", name, "--max-epochs", 2, "--no-seed-configs"]
    heartbeat = ["--heartbeat", 1, "--grace-period", GRACE_S]
    result = run_cli(
        *fast_study_args(tiny_dataset, *args, *heartbeat, "--trials", 2, "--fuse", fuse)
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output

    trials = trials_of(_optuna_url(url), name)
    taken = trials[dead]
    assert taken.state == TrialState.FAIL
    reason = f"its worker (process 4242 on another-machine) sent no heartbeat for {GRACE_S} s"
    assert taken.user_attrs[FAIL_REASON_ATTR] == f"{reason}; queued again to start again"
    assert f"trial {dead}: {reason}; queued again to start again" in result.output
    assert "is still RUNNING" not in result.output
    assert TrialState.RUNNING not in [t.state for t in trials]
    copies = [t for t in trials if t.system_attrs.get("failed_trial") == dead]
    assert len(copies) == 1  # queued again exactly once
    assert copies[0].state in (TrialState.WAITING, TrialState.COMPLETE)


def test_a_trial_gone_stale_while_the_data_loads_is_taken_over_with_its_reason(
    run_cli, tiny_dataset, monkeypatch
):
    # Before study.optimize's own sweep (fail_stale_trials), which would fail it without one.
    dead = _trial_of_a_worker_that_died_elsewhere()
    load_splits = worker_module.load_splits

    def slow_load(*args, **kwargs):
        splits = load_splits(*args, **kwargs)
        time.sleep(GRACE_S + 0.5)
        return splits

    monkeypatch.setattr(worker_module, "load_splits", slow_load)
    args = ["--storage", STORAGE, "--max-epochs", 1, "--no-seed-configs", "--trials", 1]
    heartbeat = ["--heartbeat", 1, "--grace-period", GRACE_S]
    result = run_cli(*fast_study_args(tiny_dataset, *args, *heartbeat))
    assert result.exit_code == 0, result.output
    taken = trials_of(STORAGE)[dead]
    assert taken.state == TrialState.FAIL
    assert taken.user_attrs[FAIL_REASON_ATTR].startswith(
        f"its worker (process 4242 on another-machine) sent no heartbeat for {GRACE_S} s"
    )


def test_the_run_says_when_a_silent_worker_s_trial_is_taken_over(run_cli, tiny_dataset):
    dead = _trial_of_a_worker_that_died_elsewhere()
    args = ["--storage", STORAGE, "--max-epochs", 1, "--no-seed-configs", "--trials", 1]
    heartbeat = ["--heartbeat", 30, "--grace-period", 120]
    result = run_cli(*fast_study_args(tiny_dataset, *args, *heartbeat))
    assert result.exit_code == 0, result.output
    still = [line for line in result.output.splitlines() if "is still RUNNING" in line]
    assert len(still) == 1, result.output
    assert still[0].startswith(
        f"trial {dead} is still RUNNING in process 4242 on another-machine: if that worker is "
        "gone, the first run started in "
    )
    assert "s (last heartbeat " in still[0]  # read through Optuna's caching layer
