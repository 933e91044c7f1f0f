"""The trial a study calls best: equal accuracies go to the lower loss, everywhere it is named,
and the best trial's test accuracy says how far it can be trusted."""

import tempfile
from pathlib import Path

import optuna
import pytest
from optuna.artifacts import upload_artifact
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from catdog.model import CatDogCNN
from catdog.modelfile import save_model_file
from study.attrs import CHECKPOINT_ATTR, CHECKPOINT_SHA_ATTR
from study.results.best import TEST_SELECTION_BIAS_POINTS
from study.results.summary import describe_best, study_summary, trial_table
from study.store.artifacts import open_artifact_store

STORAGE = "sqlite:///study.db"


def _trial(loss: float, accuracy: float, *, objective: str = "accuracy", split: str = "test"):
    attrs = {"test_loss": loss, "test_accuracy": accuracy, "eval_split": split}
    if split == "val":  # chosen on the validation part; the test set scored once at the end
        attrs |= {"val_loss": loss, "val_accuracy": accuracy, "test_accuracy": 0.75}
    return create_trial(
        state=TrialState.COMPLETE,
        params={"lr": 0.01},
        distributions={"lr": FloatDistribution(1e-4, 0.3, log=True)},
        value=1 - accuracy if objective == "accuracy" else loss,
        user_attrs=attrs,
    )


def _study(objective: str, figures: list[tuple[float, float]], split: str = "test"):
    study = optuna.create_study(storage=STORAGE, study_name="catdog")
    study.set_user_attr("objective", objective)
    for loss, accuracy in figures:
        study.add_trial(_trial(loss, accuracy, objective=objective, split=split))
    return study


def test_equal_accuracies_go_to_the_lower_loss(in_tmp):
    # Trials 0 and 1 are equally accurate; 1 has the lower loss. Trial 2 has the lowest loss.
    study = _study("accuracy", [(0.50, 0.80), (0.40, 0.80), (0.30, 0.70)])
    assert study.best_trial.number == 0  # Optuna takes the first of equal values
    lines = describe_best(study).splitlines()
    assert lines[0].startswith("best trial 1:")
    assert [line for line in lines if line.startswith("lowest loss")][0].startswith(
        "lowest loss: trial 2:"
    )
    note = study_summary(study)
    assert "By test accuracy: Trial #1" in note and "The lowest loss: Trial #2" in note
    assert (
        "(Optuna's own best trial, which the dashboard marks, is #0: as good by test accuracy, "
        "with a higher loss.)"
    ) in note
    assert [row[0] for row in trial_table(study.trials).rows] == ["1", "0", "2"]
    # The trials' values stay the plain error: what the dashboard plots.
    assert [t.value for t in study.trials] == pytest.approx([0.2, 0.2, 0.3])


def test_a_loss_study_names_its_most_accurate_trial_when_it_is_not_the_best(in_tmp):
    study = _study("loss", [(0.50, 0.70), (0.55, 0.80), (0.60, 0.80)])  # 1 and 2 tie: 1 wins
    lines = describe_best(study).splitlines()
    assert lines[0].startswith("best trial 0:")
    assert [line for line in lines if line.startswith("highest accuracy")] == [
        "highest accuracy: trial 1: adam lr=0.01 shuffle=on epochs=10"
    ]
    note = study_summary(study)
    assert "By test loss: Trial #0" in note and "The highest accuracy: Trial #1" in note


def test_no_second_trial_is_named_when_one_is_best_by_both(in_tmp):
    study = _study("loss", [(0.50, 0.80), (0.55, 0.70)])
    assert "highest accuracy" not in describe_best(study)
    assert "The highest accuracy" not in study_summary(study)


@pytest.mark.parametrize("objective", ["accuracy", "loss"])
def test_the_best_trial_says_the_test_set_also_picked_it(in_tmp, objective):
    study = _study(objective, [(0.50, 0.80), (0.60, 0.70)])
    points = TEST_SELECTION_BIAS_POINTS[objective]
    line = (
        f"The test set also picked this trial, so its test accuracy reads about {points:.1f} "
        "points high (40-trial studies, 1 000 test photos); --val-fraction 0.2 gives an "
        "unbiased figure."
    )
    assert describe_best(study).splitlines()[2] == f"  {line}"
    assert line in study_summary(study)


def test_a_best_trial_picked_on_validation_says_its_test_figure_is_unbiased(in_tmp):
    study = _study("accuracy", [(0.50, 0.80), (0.60, 0.70)], split="val")
    line = (
        "Picked on the validation part: its test accuracy, scored once after training, is an "
        "unbiased figure."
    )
    assert describe_best(study).splitlines()[2] == f"  {line}"
    assert line in study_summary(study)
    assert "points high" not in study_summary(study)


def test_export_takes_the_same_best_trial_and_names_the_other(run_cli):
    # Trials 0 and 1 are equally accurate; 1 has the lower loss. Trial 2 has the lowest loss.
    figures = [(0.50, 0.80), (0.40, 0.80), (0.30, 0.70)]  # (test loss, test accuracy)
    store = open_artifact_store("storage/artifacts")

    def objective(trial: optuna.Trial) -> float:  # keeps a real model file, as a trial does
        loss, accuracy = figures[trial.number]
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.safetensors"
            metrics = {"test_accuracy": accuracy}
            sha256 = save_model_file(path, CatDogCNN(64), trial=trial.number, metrics=metrics)
            artifact = upload_artifact(
                artifact_store=store, file_path=str(path), study_or_trial=trial
            )
        attrs = {"test_loss": loss, "test_accuracy": accuracy, "eval_split": "test"}
        attrs |= {CHECKPOINT_ATTR: artifact, CHECKPOINT_SHA_ATTR: sha256}
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return 1 - accuracy

    study = optuna.create_study(storage=STORAGE, study_name="catdog")
    study.set_user_attr("objective", "accuracy")
    study.optimize(objective, n_trials=len(figures))
    result = run_cli("export", "--out", "best.safetensors", "--storage", STORAGE)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "exported trial 1 (64 px, test accuracy 80.00%) to best.safetensors, SHA-256 in "
        "best.safetensors.sha256",
        "the lowest loss: trial 2 (test accuracy 70.00%); export it with --trial 2",
    ]
    chosen = run_cli("export", "--out", "two.safetensors", "--trial", 2, "--storage", STORAGE)
    assert chosen.stdout.splitlines() == [
        "exported trial 2 (64 px, test accuracy 70.00%) to two.safetensors, SHA-256 in "
        "two.safetensors.sha256"
    ]
