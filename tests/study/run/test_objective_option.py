"""`--objective accuracy|loss`: what the study ranks trials by; pruning stays on test loss.

A new study ranks by accuracy; a study keeps the objective it started with, one started before
studies stored it (they all ranked by loss then) included.
"""

import optuna
from optuna.trial import TrialState

from ..helpers import fast_study_args, one_error_line
from ..made_studies import study_before_the_objective

STORAGE = "sqlite:///study.db"
ARGS = ["--storage", STORAGE, "--max-epochs", 2, "--no-seed-configs", "--trials", 2]
KEPT_LOSS = (
    "study 'catdog' ranks its trials by test loss, as it did when it started "
    "(new studies rank by accuracy: another --study-name)"
)


def _finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(states=(TrialState.COMPLETE,))


def test_a_new_study_ranks_by_accuracy_and_prunes_on_loss(run_cli, tiny_dataset):
    result = run_cli(*fast_study_args(tiny_dataset, *ARGS))
    assert result.exit_code == 0, result.output
    assert KEPT_LOSS not in result.output
    study = optuna.load_study(study_name="catdog", storage=STORAGE)
    assert study.user_attrs["objective"] == "accuracy"
    assert study.metric_names == ["test error (1 - accuracy)"]
    assert _finished(study)
    for trial in _finished(study):
        assert trial.value == 1 - trial.user_attrs["test_accuracy"]
        # The pruner saw test losses, epoch by epoch.
        assert list(trial.intermediate_values.values()) == trial.user_attrs["epoch_test_loss"]


def test_a_study_started_before_objectives_were_stored_continues_with_loss(run_cli, tiny_dataset):
    study_before_the_objective(STORAGE, tiny_dataset, max_epochs=2)
    result = run_cli(*fast_study_args(tiny_dataset, *ARGS))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines().count(KEPT_LOSS) == 1  # said once, before the trials
    study = optuna.load_study(study_name="catdog", storage=STORAGE)
    assert study.user_attrs["objective"] == "loss"
    assert _finished(study)
    for trial in _finished(study):
        assert trial.value == trial.user_attrs["test_loss"]
    # It asks to rank by accuracy: refused, nothing trained.
    refused = run_cli(*fast_study_args(tiny_dataset, *ARGS, "--objective", "accuracy"))
    assert one_error_line(refused) == (
        "Error: study 'catdog' ranks its trials by test loss; --objective accuracy would rank "
        "them by another figure: use --objective loss or another --study-name"
    )
    assert len(optuna.load_study(study_name="catdog", storage=STORAGE).trials) == 2


def test_a_study_keeps_the_objective_it_started_with(run_cli, tiny_dataset):
    started = run_cli(*fast_study_args(tiny_dataset, *ARGS, "--objective", "loss"))
    assert started.exit_code == 0, started.output
    assert KEPT_LOSS not in started.output  # asked for: nothing to say
    again = run_cli(*fast_study_args(tiny_dataset, *ARGS, "--trials", 1))
    assert again.exit_code == 0, again.output
    assert again.output.splitlines().count(KEPT_LOSS) == 1
    study = optuna.load_study(study_name="catdog", storage=STORAGE)
    assert study.user_attrs["objective"] == "loss"
    assert study.metric_names == ["test loss"]
    assert all(t.value == t.user_attrs["test_loss"] for t in _finished(study))
