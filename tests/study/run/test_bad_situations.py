"""What goes wrong in real studies ends in a clear outcome, and nothing stored is lost."""

import errno
import os
import signal
import sqlite3
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

import study.run.objective as objective_module
from catdog.modelfile import load_model_file
from study.attrs import CHECKPOINT_ATTR, CHECKPOINT_SHA_ATTR, RESUME_ATTR
from study.store.resume import ResumeStore
from study.store.storage import open_storage

from ..helpers import fast_study_args
from ..workers import start_worker, trials_of, wait_all, wait_for_checkpoint

STORAGE = "sqlite:///study.db"
ONE_EPOCH_EACH = ["--max-epochs", 1, "--no-seed-configs", "--storage", STORAGE]


def _enqueue(*epochs: int, lr: float = 1e-3) -> None:
    """A study whose next trials have these numbers of epochs (the sampler picks otherwise)."""
    study = optuna.create_study(storage=STORAGE, study_name="catdog", load_if_exists=True)
    for count in epochs:
        study.enqueue_trial({"optimizer": "adam", "lr": lr, "shuffle": True, "epochs": count})


def _fail_first_training(monkeypatch, failure):
    """Make the first trial's training fail by `failure(run)`; later trials train normally."""
    original = objective_module.train
    calls = []

    def train(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            return failure(lambda: original(*args, **kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(objective_module, "train", train)


def test_a_study_with_another_direction_is_refused(run_cli, tiny_dataset):
    optuna.create_study(storage=STORAGE, study_name="catdog", direction="maximize")
    result = run_cli(*fast_study_args(tiny_dataset, "--trials", 1, *ONE_EPOCH_EACH))
    assert result.exit_code == 1
    assert "Error: study 'catdog' maximises its objective" in result.output


def test_non_finite_loss_fails_that_trial_and_the_study_goes_on(
    run_cli, tiny_dataset, monkeypatch
):
    real_loss = torch.nn.functional.cross_entropy

    def diverging(run):
        with monkeypatch.context() as patch:
            patch.setattr(
                torch.nn.functional,
                "cross_entropy",
                lambda *a, **k: real_loss(*a, **k) * float("inf"),
            )
            return run()

    _fail_first_training(monkeypatch, diverging)
    result = run_cli(*fast_study_args(tiny_dataset, "--trials", 2, *ONE_EPOCH_EACH))
    assert result.exit_code == 0, result.output
    first, second = trials_of(STORAGE)
    assert first.state == TrialState.FAIL
    assert "loss is not finite in epoch 1" in first.user_attrs["fail_reason"]
    assert "trial 0 failed: loss is not finite in epoch 1" in result.output
    assert second.state == TrialState.COMPLETE


def test_out_of_memory_fails_that_trial_with_a_hint(run_cli, tiny_dataset, monkeypatch):
    def out_of_memory(run):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    _fail_first_training(monkeypatch, out_of_memory)
    result = run_cli(*fast_study_args(tiny_dataset, "--trials", 2, *ONE_EPOCH_EACH))
    assert result.exit_code == 0, result.output
    first, second = trials_of(STORAGE)
    assert first.state == TrialState.FAIL
    assert first.user_attrs["fail_reason"] == (
        "out of device memory (2.00 GiB refused) at batch size 128 and 64 px; try a smaller "
        "--image-size, fewer --jobs or --fuse, or a --space file with smaller batch sizes"
    )
    assert second.state == TrialState.COMPLETE


def test_full_disk_fails_the_trial_and_keeps_earlier_checkpoints(
    run_cli, tiny_dataset, monkeypatch
):
    _enqueue(3, 3, 3)
    real_save = torch.save
    saves = []

    def save(obj, file, *args, **kwargs):
        saves.append(file)
        if len(saves) == 3:  # trial 1's first epoch checkpoint: the disk is full right now
            file.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, file, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    result = run_cli(
        *fast_study_args(
            tiny_dataset,
            "--trials",
            3,
            "--max-epochs",
            3,
            "--no-seed-configs",
            "--pruner",
            "none",
            "--storage",
            STORAGE,
        )
    )
    assert result.exit_code == 0, result.output
    first, full, after = trials_of(STORAGE)
    assert full.state == TrialState.FAIL
    assert full.user_attrs["fail_reason"].startswith(
        "disk full: no room for trial 1's checkpoint after epoch 1 in storage/artifacts/resume"
    )
    assert first.state == after.state == TrialState.COMPLETE
    for trial in (first, after):
        path = Path("storage/artifacts") / trial.user_attrs[CHECKPOINT_ATTR]
        load_model_file(path, expected_sha256=trial.user_attrs[CHECKPOINT_SHA_ATTR])
    assert list(Path("storage").rglob("*.tmp")) == []  # the half-written file was removed


def test_storage_from_an_older_optuna_names_the_upgrade_command(run_cli, tiny_dataset):
    open_storage("sqlite:///old.db")
    with sqlite3.connect("old.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'v3.0.0.a'")
    result = run_cli(
        *fast_study_args(tiny_dataset, "--trials", 1, "--storage", "sqlite:///old.db")
    )
    assert result.exit_code == 1
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "Traceback" not in result.output
    assert "optuna storage upgrade --storage sqlite:///old.db" in error[0]


def test_ctrl_c_fails_the_trial_cleanly_and_the_next_run_resumes_it(in_tmp, tiny_dataset):
    _enqueue(40)
    args = [
        "--data",
        tiny_dataset,
        "--storage",
        STORAGE,
        "--max-epochs",
        40,
        "--pruner",
        "none",
        "--no-seed-configs",
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--trials",
        1,
    ]
    worker = start_worker(in_tmp, "first.log", *args)
    wait_for_checkpoint(STORAGE, 2, worker)
    os.kill(worker.pid, signal.SIGINT)
    assert wait_all([worker]) == [130]
    output = (in_tmp / "first.log").read_text()
    assert "interrupted: the running trial is marked FAIL" in output
    assert "Traceback" not in output

    interrupted, queued = trials_of(STORAGE)
    epoch = interrupted.user_attrs[RESUME_ATTR]["epoch"]
    assert interrupted.state == TrialState.FAIL
    assert interrupted.user_attrs["fail_reason"].startswith("interrupted by the user after epoch")
    assert queued.state == TrialState.WAITING and queued.params == interrupted.params
    # Every stored checkpoint is loadable: the interrupted trial's resume point is whole.
    store = ResumeStore("storage/artifacts", "catdog")
    config = objective_module.to_config({**interrupted.user_attrs["config"]})
    assert store.load(interrupted.user_attrs[RESUME_ATTR], config, seed=0).epoch == epoch

    again = start_worker(in_tmp, "second.log", *args)
    assert wait_all([again]) == [0]
    assert (
        f"trial 1 resumes trial 0 from its checkpoint after epoch {epoch}"
        in (in_tmp / "second.log").read_text()
    )
    assert [t.state for t in trials_of(STORAGE)] == [TrialState.FAIL, TrialState.COMPLETE]


def _fake_server(served: dict):
    """Stands in for study.results.server.serve: records where it was asked to listen, and says
    it listens, as the real one does once its socket is bound."""

    def serve(app, **kwargs):
        served.update(kwargs)
        kwargs["on_listening"](f"http://{kwargs['host']}:{kwargs['port']}")

    return serve


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5"])
def test_dashboard_beyond_loopback_warns_that_it_has_no_login(run_cli, monkeypatch, host):
    optuna.create_study(storage="sqlite:///dash.db")
    served = {}
    monkeypatch.setattr("study.results.server.serve", _fake_server(served))
    result = run_cli("dashboard", "--host", host, "--storage", "sqlite:///dash.db")
    assert result.exit_code == 0, result.output
    assert served["host"] == host
    assert "optuna-dashboard has no login" in result.output
    assert "can change or delete studies" in result.output


def test_dashboard_binds_loopback_by_default_without_warning(run_cli, monkeypatch):
    optuna.create_study(storage="sqlite:///dash.db")
    served = {}
    monkeypatch.setattr("study.results.server.serve", _fake_server(served))
    result = run_cli("dashboard", "--storage", "sqlite:///dash.db")
    assert served["host"] == "127.0.0.1" and served["port"] == 8080
    assert "no login" not in result.output
