"""Real worker processes on one storage: killed workers, many workers, PostgreSQL."""

import os
import signal
import time
from collections import Counter

import optuna
import pytest
from optuna.trial import TrialState

from catdog.paper import PAPER_RUNS
from study.attrs import PAPER_RUN_ATTR, RESUME_ATTR

from ..workers import start_worker, trials_of, wait_all, wait_for

FAST = ["--device", "cpu", "--precision", "fp32"]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _logs(folder) -> str:
    return "\n".join(p.read_text() for p in sorted(folder.glob("*.log")))


def test_killed_worker_trial_resumes_from_its_checkpoint(in_tmp, tiny_dataset):
    storage = "sqlite:///study.db"
    study = optuna.create_study(storage=storage, study_name="catdog")
    long_trial = {"optimizer": "adam", "lr": 1e-3, "shuffle": True, "epochs": 40}
    study.enqueue_trial(long_trial)
    common = [
        "--data",
        tiny_dataset,
        "--storage",
        storage,
        "--max-epochs",
        40,
        "--pruner",
        "none",
        "--no-seed-configs",
        "--heartbeat",
        1,
        "--grace-period",
        2,
        *FAST,
    ]

    first = start_worker(in_tmp, "first.log", "--trials", 2, *common)

    def checkpointed() -> bool:
        trials = trials_of(storage)
        return bool(trials) and trials[0].user_attrs.get(RESUME_ATTR, {}).get("epoch", 0) >= 3

    wait_for(checkpointed, what="a checkpoint of trial 0")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    killed_at = trials_of(storage)[0].user_attrs[RESUME_ATTR]["epoch"]
    assert trials_of(storage)[0].state == TrialState.RUNNING  # nobody could mark it
    time.sleep(3)  # past the 2 s grace period: the dead worker's trial is now stale

    second = start_worker(in_tmp, "second.log", "--trials", 2, *common)
    assert wait_all([second]) == [0], (in_tmp / "second.log").read_text()

    trials = trials_of(storage)
    assert [t.state for t in trials].count(TrialState.RUNNING) == 0
    assert trials[0].state == TrialState.FAIL
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == 2  # what the second worker was asked for
    retried = trials[1]
    assert retried.params == long_trial and retried.state == TrialState.COMPLETE
    assert retried.user_attrs["resumed_from"] == {"trial": 0, "epoch": killed_at}
    assert sorted(retried.intermediate_values) == list(range(1, 41))
    assert len(retried.user_attrs["epoch_test_loss"]) == 40
    log = (in_tmp / "second.log").read_text()
    assert f"trial 1 resumes trial 0 from its checkpoint after epoch {killed_at}" in log
    # Nothing of the finished trials' resume checkpoints is left behind.
    assert not list((in_tmp / "storage" / "artifacts" / "resume").rglob("*.pt"))


def test_four_workers_on_one_fresh_sqlite_file(in_tmp, tiny_dataset):
    storage = "sqlite:///fresh.db"
    workers = [
        start_worker(
            in_tmp,
            f"worker{i}.log",
            "--data",
            tiny_dataset,
            "--storage",
            storage,
            "--trials",
            5,
            "--max-epochs",
            2,
            *FAST,
        )
        for i in range(4)
    ]
    assert wait_all(workers) == [0, 0, 0, 0], _logs(in_tmp)
    logs = _logs(in_tmp)
    assert "locked" not in logs and "Traceback" not in logs, logs
    trials = trials_of(storage)
    assert sorted(t.number for t in trials) == list(range(20))
    assert all(t.state in FINISHED for t in trials)
    labels = Counter(t.user_attrs.get(PAPER_RUN_ATTR) for t in trials)
    assert all(labels[run.label] == 1 for run in PAPER_RUNS), labels  # queued exactly once
    assert len(optuna.get_all_study_names(storage=storage)) == 1


POSTGRES_URL = os.environ.get("CATDOG_TEST_POSTGRES_URL")


@pytest.mark.skipif(
    not POSTGRES_URL,
    reason="set CATDOG_TEST_POSTGRES_URL to a PostgreSQL database (.ci/run starts a server)",
)
def test_two_workers_on_postgresql(in_tmp, tiny_dataset):
    study_name = f"catdog-{os.getpid()}"
    workers = [
        start_worker(
            in_tmp,
            f"worker{i}.log",
            "--data",
            tiny_dataset,
            "--storage",
            POSTGRES_URL,
            "--study-name",
            study_name,
            "--trials",
            5,
            "--max-epochs",
            2,
            *FAST,
        )
        for i in range(2)
    ]
    try:
        assert wait_all(workers) == [0, 0], _logs(in_tmp)
        trials = trials_of(
            POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"), study_name
        )
        assert len(trials) == 10 and all(t.state in FINISHED for t in trials)
        assert sorted(t.number for t in trials) == list(range(10))
    finally:
        optuna.delete_study(
            study_name=study_name,
            storage=POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"),
        )
