import os
import signal

import pytest
import torch
from optuna.trial import TrialState

from catdog.config import TrainConfig
from catdog.modelfile import sha256_of
from catdog.train import DeviceImages, new_state
from study.store.resume import CheckpointRefused, ResumeStore

from ..workers import start_worker, trials_of, wait_all, wait_for_checkpoint


class _Trial:
    """The two things ResumeStore.save uses of an Optuna trial."""

    def __init__(self, number):
        self.number = number
        self.user_attrs = {}

    def set_user_attr(self, key, value):
        self.user_attrs[key] = value


CONFIG = TrainConfig(optimizer="adam", lr=1e-3, epochs=5)


@pytest.fixture
def saved(tmp_path):
    images = torch.zeros(8, 3, 64, 64, dtype=torch.uint8)
    state = new_state(CONFIG, DeviceImages(images, torch.zeros(8, dtype=torch.int64)), seed=1)
    store = ResumeStore(tmp_path, "catdog")
    trial = _Trial(4)
    store.save(trial, state, CONFIG, seed=1)
    return store, trial.user_attrs["resume_checkpoint"]


def test_checkpoint_loads_back(saved):
    store, info = saved
    point = store.load(info, CONFIG, seed=1)
    assert point.epoch == 0 and set(point.state) >= {"model", "optimizer", "generator"}


def test_each_epoch_replaces_the_previous_file(saved):
    store, info = saved
    assert [p.name for p in store.folder.iterdir()] == [info["file"]]


def test_flipped_byte_is_refused(saved):
    store, info = saved
    path = store.folder / info["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointRefused, match="does not match the SHA-256"):
        store.load(info, CONFIG, seed=1)


def test_truncated_file_is_refused(saved):
    store, info = saved
    path = store.folder / info["file"]
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointRefused, match="does not match the SHA-256"):
        store.load(info, CONFIG, seed=1)


class _WritesMarker:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_code_is_refused_even_with_a_matching_sha256(saved, tmp_path):
    store, info = saved
    marker = tmp_path / "marker"
    path = store.folder / info["file"]
    torch.save({"format": "catdog-resume-1", "state": _WritesMarker(marker)}, path)
    forged = {**info, "sha256": sha256_of(path)}  # an attacker who could also edit the study
    with pytest.raises(CheckpointRefused, match="other than plain tensors"):
        store.load(forged, CONFIG, seed=1)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # what an unsafe loader would do: the file is armed
    assert marker.exists()


def test_checkpoint_of_another_configuration_is_refused(saved):
    store, info = saved
    with pytest.raises(CheckpointRefused, match="another configuration or seed"):
        store.load(info, CONFIG, seed=2)


def test_the_stop_line_says_how_many_queued_trials_run_before_the_stopped_one(
    in_tmp, tiny_dataset
):
    storage = "sqlite:///study.db"
    args = ["--data", tiny_dataset, "--storage", storage, "--trials", 1, "--pruner", "none"]
    args += ["--device", "cpu", "--precision", "fp32"]  # the report's 4 runs are queued first
    worker = start_worker(in_tmp, "first.log", *args)
    wait_for_checkpoint(storage, 1, worker)
    os.kill(worker.pid, signal.SIGINT)
    assert wait_all([worker]) == [130]
    stop_line = (in_tmp / "first.log").read_text().strip().splitlines()[-1]
    assert stop_line.startswith("interrupted: the running trial is marked FAIL")
    assert stop_line.endswith(
        "Run the same command again to continue the study. It resumes after the 3 trials "
        "queued before it."
    )
    queued = [t.number for t in trials_of(storage) if t.state == TrialState.WAITING]
    assert queued == [1, 2, 3, 4]  # Optuna takes them by number: the copy of trial 0 last
