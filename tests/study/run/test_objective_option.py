"""`--objective loss|accuracy`: what the study ranks trials by; pruning stays on test loss."""

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from study.results.summary import describe_best, study_summary

from ..helpers import fast_study_args

STORAGE = "sqlite:///study.db"
ARGS = ["--storage", STORAGE, "--max-epochs", 2, "--no-seed-configs", "--trials", 2]


def test_accuracy_ranks_trials_by_their_error(run_cli, tiny_dataset):
    result = run_cli(*fast_study_args(tiny_dataset, *ARGS, "--objective", "accuracy"))
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="catdog", storage=STORAGE)
    assert study.user_attrs["objective"] == "accuracy"
    assert study.metric_names == ["test error (1 - accuracy)"]
    for trial in study.get_trials(states=(TrialState.COMPLETE,)):
        assert trial.value == 1 - trial.user_attrs["test_accuracy"]
        # The pruner saw test losses, epoch by epoch.
        assert list(trial.intermediate_values.values()) == trial.user_attrs["epoch_test_loss"]


def test_a_study_keeps_the_objective_it_started_with(run_cli, tiny_dataset):
    assert run_cli(*fast_study_args(tiny_dataset, *ARGS)).exit_code == 0
    result = run_cli(*fast_study_args(tiny_dataset, *ARGS, "--objective", "accuracy"))
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: study 'catdog' ranks its trials by test loss; --objective accuracy would rank "
        "them by another figure: use --objective loss or another --study-name"
    ]


def _finished(number: int, loss: float, accuracy: float):
    return create_trial(
        state=TrialState.COMPLETE,
        params={"lr": 0.01},
        distributions={"lr": FloatDistribution(1e-4, 0.3, log=True)},
        value=loss,
        user_attrs={"test_loss": loss, "test_accuracy": accuracy, "eval_split": "test"},
    )


def test_the_summary_names_the_most_accurate_trial_when_it_is_not_the_best(in_tmp):
    study = optuna.create_study(storage=STORAGE, study_name="made")
    study.set_user_attr("objective", "loss")
    study.add_trial(_finished(0, 0.50, 0.70))
    study.add_trial(_finished(1, 0.55, 0.80))  # worse loss, higher accuracy
    lines = describe_best(study).splitlines()
    assert lines[0].startswith("best trial 0:")
    assert lines[2].startswith("highest accuracy: trial 1:")
    note = study_summary(study)
    assert "By test loss: Trial #0" in note and "The highest accuracy: Trial #1" in note


def test_no_second_trial_is_named_when_one_is_best_by_both(in_tmp):
    study = optuna.create_study(storage=STORAGE, study_name="made")
    study.add_trial(_finished(0, 0.50, 0.80))
    study.add_trial(_finished(1, 0.55, 0.70))
    assert "highest accuracy" not in describe_best(study)
