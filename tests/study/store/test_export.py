import errno
import re
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

import study.run.objective as objective_module
from catdog.images import decode_image
from catdog.modelfile import load_model_file, read_checksum, sha256_of
from catdog.train import predict_probabilities
from study.attrs import CHECKPOINT_ATTR

from ..helpers import fast_study_args, fill, one_error_line, read_only

STORAGE = "sqlite:///study.db"
CHECKSUM = "best.safetensors.sha256"


@pytest.fixture
def trained_models(monkeypatch):
    """Trial number -> the model the study trained, as it was in memory."""
    models = {}
    original = objective_module.train

    def keep(config, *args, **kwargs):
        state = original(config, *args, **kwargs)
        models[len(models)] = state.model
        return state

    monkeypatch.setattr(objective_module, "train", keep)
    return models


def test_export_then_predict_matches_the_model_in_memory(run_cli, tiny_dataset, trained_models):
    result = run_cli(
        *fast_study_args(
            tiny_dataset,
            "--trials",
            2,
            "--max-epochs",
            2,
            "--no-seed-configs",
            "--pruner",
            "none",
            "--storage",
            STORAGE,
        )
    )
    assert result.exit_code == 0, result.output
    best = int(re.search(r"best trial (\d+)", result.output).group(1))

    exported = run_cli("export", "--out", "best.safetensors", "--storage", STORAGE)
    assert exported.exit_code == 0, exported.output
    assert f"exported trial {best}" in exported.stdout
    assert exported.stderr.splitlines() == [
        f"warning: best.safetensors learned SYNTHETIC shapes from {tiny_dataset}, 64 px, not "
        "cats and dogs: its answers on photos mean nothing"
    ]
    model_file = load_model_file("best.safetensors")
    assert model_file.info["trial"] == best and model_file.info["class_names"] == ["cat", "dog"]
    assert model_file.info["params"]["optimizer"] in ("sgd", "adam")

    images = sorted((tiny_dataset / "test_set").rglob("*.jpg"))[::5]
    predicted = run_cli("predict", "best.safetensors", *images)
    assert predicted.exit_code == 0, predicted.output
    assert predicted.stderr.startswith("warning: best.safetensors learned SYNTHETIC shapes")
    lines = predicted.stdout.strip().splitlines()
    assert len(lines) == len(images)

    in_memory = trained_models[best]
    for path, line in zip(images, lines, strict=True):
        pixels = torch.from_numpy(np.ascontiguousarray(decode_image(path, 64))).permute(2, 0, 1)
        probabilities = predict_probabilities(in_memory, pixels[None])[0]
        label = int(probabilities.argmax())
        name, probability = line.rsplit(" ", 2)[-2:]
        assert line.startswith(f"{path}: ")
        assert name == ("cat", "dog")[label]
        assert float(probability) == pytest.approx(float(probabilities[label]), abs=1e-4)

    # What show reads from the exported file's header, and the checksum export wrote.
    shown = run_cli("show", "best.safetensors")
    assert shown.exit_code == 0, shown.output
    accuracy = model_file.info["metrics"]["test_accuracy"]
    assert f"test set    accuracy {100 * accuracy:.1f} %" in shown.stdout
    assert f"trained     trial {best} of study 'catdog'" in shown.stdout
    assert "check       matches best.safetensors.sha256" in shown.stdout

    # Exporting again over the file is refused without --force, and leaves both files alone.
    before = {name: Path(name).read_bytes() for name in ("best.safetensors", CHECKSUM)}
    other = 1 - best
    again = run_cli("export", "--out", "best.safetensors", "--trial", other, "--storage", STORAGE)
    assert again.exit_code == 1
    assert again.output.splitlines()[-1] == (
        "Error: best.safetensors already exists: give --force to replace it"
    )
    assert {name: Path(name).read_bytes() for name in before} == before
    forced = run_cli(
        "export", "--out", "best.safetensors", "--trial", other, "--force", "--storage", STORAGE
    )
    assert forced.exit_code == 0, forced.output
    assert load_model_file("best.safetensors").info["trial"] == other
    assert read_checksum("best.safetensors") == sha256_of(Path("best.safetensors"))


def test_export_of_a_trial_without_checkpoint_says_so(run_cli, tiny_dataset):
    result = run_cli("export", "--out", "x.safetensors", "--storage", STORAGE)
    assert result.exit_code == 1
    assert "Error: no study database at study.db" in result.output  # and none was made


def test_predict_refuses_a_file_that_is_not_a_model(run_cli, tmp_path):
    fake = tmp_path / "fake.safetensors"
    fake.write_bytes(b"not a model")
    result = run_cli("predict", fake, fake)
    assert result.exit_code == 1
    assert "not a readable safetensors model file" in result.output
    assert "Traceback" not in result.output


def test_export_refuses_to_replace_a_file_without_force(run_cli, in_tmp):
    def objective(trial):  # finished, with a checkpoint id: export would get as far as copying
        trial.set_user_attr(CHECKPOINT_ATTR, "0123-abcd")
        return trial.suggest_float("x", 0, 1)

    optuna.create_study(storage=STORAGE, study_name="catdog").optimize(objective, n_trials=1)
    Path("mine.safetensors").write_bytes(b"someone's model")
    result = run_cli("export", "--out", "mine.safetensors", "--storage", STORAGE)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.splitlines() == [
        "Error: mine.safetensors already exists: give --force to replace it"
    ]
    assert Path("mine.safetensors").read_bytes() == b"someone's model"
    assert sorted(p.name for p in in_tmp.iterdir()) == ["mine.safetensors", "study.db"]


@pytest.fixture
def one_trained_trial(run_cli, tiny_dataset):
    made = run_cli(*fast_study_args(tiny_dataset, "--trials", 1, "--max-epochs", 1))
    assert made.exit_code == 0, made.output


@pytest.mark.parametrize("disk", ["read-only", "full"])
def test_export_onto_a_disk_it_cannot_write_is_one_error_line(
    run_cli, one_trained_trial, small_disk, disk
):
    media = small_disk("1m")
    (read_only if disk == "read-only" else fill)(media)
    before = sorted(media.iterdir())
    result = run_cli("export", "--out", media / "best.safetensors")
    reason = "is not writable" if disk == "read-only" else "No space left on device"
    assert reason in one_error_line(result)
    assert sorted(media.iterdir()) == before  # no model, no .sha256, no temporary file


def test_a_model_file_is_not_left_without_its_digest(run_cli, one_trained_trial, monkeypatch):
    def no_room(path, sha256):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("study.store.export.write_checksum", no_room)
    result = run_cli("export", "--out", "best.safetensors")
    assert (
        one_error_line(result) == "Error: cannot write best.safetensors: No space left on device"
    )
    assert not Path("best.safetensors").exists()  # show would call it damaged
