import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

import study.store.storage as storage_module
from catdog.paper import PAPER_RUNS
from study.attrs import CHECKPOINT_ATTR, CURVES, PAPER_RUN_ATTR

from ..helpers import fast_study_args

STORAGE = "sqlite:///study.db"


def _load(name="catdog"):
    return optuna.load_study(study_name=name, storage=STORAGE)


def test_new_study_runs_the_report_configs_first_and_never_prunes_them(run_cli, tiny_dataset):
    result = run_cli(
        *fast_study_args(tiny_dataset, "--trials", 5, "--max-epochs", 2, "--storage", STORAGE)
    )
    assert result.exit_code == 0, result.output
    trials = _load().trials
    assert len(trials) == 5
    baselines = trials[:4]
    assert [t.user_attrs[PAPER_RUN_ATTR] for t in baselines] == [r.label for r in PAPER_RUNS]
    for trial, run in zip(baselines, PAPER_RUNS, strict=True):
        assert trial.params == {
            "optimizer": run.optimizer,
            "lr": run.lr,
            "shuffle": run.shuffle,
            "epochs": 2,
        }  # capped at --max-epochs
        assert trial.state == TrialState.COMPLETE
    for trial in trials:
        if trial.state == TrialState.COMPLETE:
            epochs = trial.params["epochs"]
            assert all(len(trial.user_attrs[name]) == epochs for name in CURVES)
            assert 0 <= trial.user_attrs["test_accuracy"] <= 1
            assert trial.user_attrs[CHECKPOINT_ATTR]
            assert len(trial.user_attrs["checkpoint_sha256"]) == 64
    assert "best trial" in result.output and "test accuracy" in result.output

    # The same command again continues the study: more trials, the baselines not queued twice.
    again = run_cli(
        *fast_study_args(tiny_dataset, "--trials", 2, "--max-epochs", 2, "--storage", STORAGE)
    )
    assert again.exit_code == 0, again.output
    trials = _load().trials
    assert len(trials) == 7
    assert sum(PAPER_RUN_ATTR in t.user_attrs for t in trials) == 4


def test_three_trial_study_prunes_trials_that_lag(run_cli, tiny_dataset):
    # Five earlier trials with a near-perfect test loss at every epoch: the median pruner
    # (the default, active from epoch 4) must stop every new trial with epochs left after 4.
    study = optuna.create_study(storage=STORAGE, study_name="catdog", direction="minimize")
    distributions = {
        "optimizer": CategoricalDistribution(["sgd", "adam"]),
        "lr": FloatDistribution(1e-4, 0.3, log=True),
        "shuffle": CategoricalDistribution([True, False]),
        "epochs": IntDistribution(1, 6),
    }
    for _ in range(5):
        study.add_trial(
            create_trial(
                params={"optimizer": "adam", "lr": 1e-3, "shuffle": True, "epochs": 6},
                distributions=distributions,
                value=0.01,
                intermediate_values=dict.fromkeys(range(1, 7), 0.01),
            )
        )
    result = run_cli(
        *fast_study_args(
            tiny_dataset,
            "--trials",
            3,
            "--max-epochs",
            6,
            "--no-seed-configs",
            "--storage",
            STORAGE,
        )
    )
    assert result.exit_code == 0, result.output
    new = _load().trials[5:]
    assert len(new) == 3
    long_trials = [t for t in new if t.params["epochs"] > 4]
    assert long_trials, "the seeded sampler should draw at least one trial of 5-6 epochs"
    for trial in long_trials:
        assert trial.state == TrialState.PRUNED
        assert list(trial.intermediate_values) == [1, 2, 3, 4]
        assert len(trial.user_attrs["epoch_test_loss"]) == 4
        assert CHECKPOINT_ATTR not in trial.user_attrs
    for trial in new:
        if trial.params["epochs"] <= 4:  # never compared before its last epoch
            assert trial.state == TrialState.COMPLETE
    assert "pruned after epoch 4" in result.output


def test_a_changed_search_space_is_refused_naming_both(run_cli, tiny_dataset):
    first = run_cli(
        *fast_study_args(
            tiny_dataset,
            "--trials",
            1,
            "--max-epochs",
            1,
            "--no-seed-configs",
            "--storage",
            STORAGE,
        )
    )
    assert first.exit_code == 0, first.output
    second = run_cli(
        *fast_study_args(tiny_dataset, "--trials", 1, "--max-epochs", 2, "--storage", STORAGE)
    )
    assert second.exit_code == 1
    assert "was started with search space report" in second.output
    assert "Traceback" not in second.output


def test_one_worker_sets_up_the_run_once(run_cli, tiny_dataset, monkeypatch):
    # With --jobs 1 the worker trains in the command's own process, on the study the command
    # set up: one storage opened, one study opened, for the whole run.
    opened = {"storages": 0, "studies": 0}

    class CountingStorage(storage_module.RetryingRDBStorage):
        def __init__(self, *args, **kwargs):
            opened["storages"] += 1
            super().__init__(*args, **kwargs)

    def counting(open_study):
        def open_and_count(*args, **kwargs):
            opened["studies"] += 1
            return open_study(*args, **kwargs)

        return open_and_count

    monkeypatch.setattr(storage_module, "RetryingRDBStorage", CountingStorage)
    monkeypatch.setattr(optuna, "create_study", counting(optuna.create_study))
    monkeypatch.setattr(optuna, "load_study", counting(optuna.load_study))
    args = ("--trials", 2, "--max-epochs", 1, "--storage", STORAGE)
    result = run_cli(*fast_study_args(tiny_dataset, *args))
    assert result.exit_code == 0, result.output
    assert opened == {"storages": 1, "studies": 1}
