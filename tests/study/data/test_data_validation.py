"""--val-fraction: a stratified, seeded validation part drives the search; test comes last."""

import optuna
import pytest
import torch

from study.attrs import VAL_CURVES
from study.data.source import data_source
from study.data.splits import load_splits, validation_split

from ..helpers import fast_study_args

STORAGE = "sqlite:///study.db"
LABELS = torch.tensor([0] * 50 + [1] * 30)
CPU = torch.device("cpu")


def test_split_is_stratified_disjoint_ordered_and_seeded():
    train, val = validation_split(LABELS, 0.2, seed=7)
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(80))
    assert LABELS[val].bincount().tolist() == [10, 6]  # 20 % of each class
    assert train.tolist() == sorted(train.tolist())  # class-sorted order kept for shuffle=off
    again_train, again_val = validation_split(LABELS, 0.2, seed=7)
    assert torch.equal(train, again_train) and torch.equal(val, again_val)
    _, other_val = validation_split(LABELS, 0.2, seed=8)
    assert not torch.equal(val, other_val)


def test_no_image_is_in_both_parts(in_tmp, tiny_dataset):
    data = load_splits(data_source(tiny_dataset, 64), CPU, val_fraction=0.2, seed=3)
    assert (len(data.train), len(data.val), len(data.test)) == (32, 8, 16)
    assert data.val.labels.bincount().tolist() == [4, 4]
    train_images = data.train.images.flatten(1)
    for image in data.val.images.flatten(1):
        assert not (train_images == image).all(dim=1).any()
    same = load_splits(data_source(tiny_dataset, 64), CPU, val_fraction=0.2, seed=3)
    assert torch.equal(same.val.images, data.val.images)


def test_each_finished_trial_carries_validation_and_test_figures(run_cli, tiny_dataset):
    args = ["--trials", 2, "--max-epochs", 2, "--no-seed-configs", "--pruner", "none"]
    result = run_cli(
        *fast_study_args(tiny_dataset, *args, "--val-fraction", 0.2, "--storage", STORAGE)
    )
    assert result.exit_code == 0, result.output
    assert "32 training, 8 validation and 16 test images" in result.output
    study = optuna.load_study(study_name="catdog", storage=STORAGE)
    assert study.metric_names == ["validation error (1 - accuracy)"]
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        attrs = trial.user_attrs
        assert attrs["eval_split"] == "val"
        epochs = trial.params["epochs"]
        assert all(len(attrs[name]) == epochs for name in VAL_CURVES)
        assert "epoch_test_loss" not in attrs
        assert list(trial.intermediate_values.values()) == attrs["epoch_val_loss"]
        assert attrs["val_loss"] == attrs["epoch_val_loss"][-1]
        assert trial.value == 1 - attrs["val_accuracy"] == 1 - attrs["epoch_val_accuracy"][-1]
        assert 0 <= attrs["val_accuracy"] <= 1 and 0 <= attrs["test_accuracy"] <= 1
        assert attrs["test_loss"] > 0
    best_lines = result.output.split("best trial")[1]
    assert "validation loss" in best_lines and "test accuracy" in best_lines
    assert "Picked on the validation part: its test accuracy, scored once" in best_lines


def test_a_study_cannot_mix_protocols(run_cli, tiny_dataset):
    args = ["--trials", 1, "--max-epochs", 1, "--no-seed-configs", "--storage", STORAGE]
    first = run_cli(*fast_study_args(tiny_dataset, *args, "--val-fraction", 0.2))
    assert first.exit_code == 0, first.output
    for other in (
        ["--val-fraction", 0],
        ["--val-fraction", 0.3],
        ["--val-fraction", 0.2, "--seed", 1],
    ):
        result = run_cli(*fast_study_args(tiny_dataset, *args, *other))
        assert result.exit_code == 1, other
        assert "use another --study-name" in result.output
        assert "validation 0.2 of training_set split with --seed 0" in result.output


def test_a_fraction_that_empties_a_part_is_refused(run_cli, tiny_dataset):
    result = run_cli(*fast_study_args(tiny_dataset, "--trials", 1, "--val-fraction", 0.99))
    assert result.exit_code == 1
    assert (
        "Error: --val-fraction 0.99 of the 20 cats training images leaves 20 for validation"
        in (result.output)
    )


@pytest.mark.parametrize("fraction", ["1", "-0.1"])
def test_fraction_out_of_range(run_cli, tiny_dataset, fraction):
    result = run_cli(*fast_study_args(tiny_dataset, "--trials", 1, "--val-fraction", fraction))
    assert result.exit_code == 2
    assert "0<=x<1" in result.output
