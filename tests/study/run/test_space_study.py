"""Studies over the extended space and space files, re-runs of trials, and space changes."""

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from catdog.config import TrainConfig
from catdog.modelfile import load_model_file
from study.attrs import PAPER_RUN_ATTR, RERUN_ATTR
from study.results.best import best_trial
from study.space.builtin import extended_space
from study.space.dimensions import to_config

from ..helpers import fast_study_args

STORAGE = "sqlite:///study.db"


def _study(name="catdog") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=STORAGE)


def _optimize(run_cli, data, *args):
    return run_cli(*fast_study_args(data, "--storage", STORAGE, *args))


def _errors(result) -> list[str]:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    return [line for line in result.output.splitlines() if line.startswith("Error:")]


def test_ten_trial_extended_study_stores_everything_each_trial_used(run_cli, tiny_dataset):
    result = _optimize(
        run_cli, tiny_dataset, "--space", "extended", "--trials", 10, "--max-epochs", 2
    )
    assert result.exit_code == 0, result.output
    trials = _study().trials
    assert len(trials) == 10
    space = extended_space(2)
    for trial in trials:
        assert trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
            trial.state == TrialState.FAIL and trial.user_attrs.get("fail_reason")
        )
        config = TrainConfig.from_dict(trial.user_attrs["config"])
        assert trial.user_attrs["space"] == f"extended ({space.fingerprint()})"
        # The params give back exactly the stored config (warm-up capped at epochs - 1).
        assert to_config(space.suggest(optuna.trial.FixedTrial(trial.params))) == config
        sgd = config.optimizer == "sgd"
        assert ("momentum" in trial.params) == sgd and ("beta1" in trial.params) == (not sgd)
    # The report's runs kept the report's whole recipe, not only its four knobs.
    for trial in trials[:4]:
        assert PAPER_RUN_ATTR in trial.user_attrs
        config = trial.user_attrs["config"]
        assert (config["batch_size"], config["lr_schedule"], config["min_crop_scale"]) == (
            128,
            "constant",
            1.0,
        )
    searched = [TrainConfig.from_dict(t.user_attrs["config"]) for t in trials[4:]]
    assert {c.batch_size for c in searched} != {128}  # the extra dimensions are searched
    # The exported model says which space and seed it came from.
    best = best_trial(_study().trials)  # equal accuracies: the lower loss, as export takes it
    exported = run_cli("export", "--out", "best.safetensors", "--storage", STORAGE)
    assert exported.exit_code == 0, exported.output
    info = load_model_file(Path("best.safetensors")).info
    assert info["space"]["name"] == "extended"
    assert info["space"]["fingerprint"] == space.fingerprint()
    assert info["seed"] == best.user_attrs["seed"] and info["config"] == best.user_attrs["config"]


def test_re_running_a_trial_in_another_study_repeats_its_test_losses(run_cli, tiny_dataset):
    first = _optimize(
        run_cli,
        tiny_dataset,
        "--space",
        "extended",
        "--trials",
        2,
        "--max-epochs",
        3,
        "--pruner",
        "none",
        "--no-seed-configs",
    )
    assert first.exit_code == 0, first.output
    again = _optimize(
        run_cli,
        tiny_dataset,
        "--space",
        "extended",
        "--trials",
        1,
        "--max-epochs",
        3,
        "--no-seed-configs",
        "--study-name",
        "again",
        "--enqueue-trial",
        1,
        "--enqueue-from",
        "catdog",
    )
    assert again.exit_code == 0, again.output
    assert "queued a re-run of catdog trial 1 (seed 1)" in again.output
    original, rerun = _study().trials[1], _study("again").trials[0]
    assert rerun.user_attrs[RERUN_ATTR] == "catdog trial 1"
    assert rerun.user_attrs["seed"] == original.user_attrs["seed"] == 1
    assert rerun.user_attrs["config"] == original.user_attrs["config"]
    assert rerun.params == original.params
    assert len(rerun.user_attrs["epoch_test_loss"]) == original.user_attrs["config"]["epochs"]
    assert rerun.user_attrs["epoch_test_loss"] == pytest.approx(
        original.user_attrs["epoch_test_loss"], rel=1e-5
    )


def test_a_re_run_the_space_cannot_give_names_each_setting(run_cli, tiny_dataset):
    first = _optimize(
        run_cli,
        tiny_dataset,
        "--space",
        "extended",
        "--trials",
        1,
        "--max-epochs",
        1,
        "--no-seed-configs",
        "--seed",
        3,
    )
    assert first.exit_code == 0, first.output
    config = _study().trials[0].user_attrs["config"]
    differs = [
        k
        for k, v in config.items()
        if k not in ("optimizer", "lr", "shuffle", "epochs") and v != TrainConfig().to_dict()[k]
    ]
    assert differs, config
    result = _optimize(
        run_cli,
        tiny_dataset,
        "--trials",
        1,
        "--max-epochs",
        1,
        "--study-name",
        "report",
        "--enqueue-trial",
        0,
        "--enqueue-from",
        "catdog",
    )
    errors = _errors(result)
    assert errors[0] == "Error: cannot re-run catdog trial 0 in this space:"
    named = [line.split(": ")[2].split(" = ")[0] for line in errors[1:]]
    assert set(differs) <= set(named)
    assert "report" not in optuna.get_all_study_names(STORAGE)  # nothing was created
    missing = _optimize(run_cli, tiny_dataset, "--trials", 1, "--enqueue-trial", 7)
    assert _errors(missing) == ["Error: study 'catdog' has no trial 7"]
    nowhere = _optimize(run_cli, tiny_dataset, "--enqueue-trial", 0, "--enqueue-from", "nobody")
    assert _errors(nowhere) == ["Error: no study named 'nobody' to re-run trial 0 from"]


def test_a_space_change_is_refused_unless_allowed_and_compatible(run_cli, tiny_dataset):
    common = ("--trials", 1, "--no-seed-configs")
    assert _optimize(run_cli, tiny_dataset, *common, "--max-epochs", 1).exit_code == 0
    refused = _optimize(run_cli, tiny_dataset, *common, "--max-epochs", 2)
    (error,) = _errors(refused)
    assert "was started with search space report" in error and "--allow-space-change" in error

    with pytest.warns(UserWarning, match="continues with search space report"):
        widened = _optimize(
            run_cli, tiny_dataset, *common, "--max-epochs", 2, "--allow-space-change"
        )
    assert widened.exit_code == 0, widened.output
    assert _study().user_attrs["search_space"]["dimensions"][3]["high"] == 2
    assert len(_study().trials) == 2

    # report -> extended changes the optimizer's choices, which one Optuna study cannot hold.
    extended = _optimize(
        run_cli,
        tiny_dataset,
        *common,
        "--max-epochs",
        2,
        "--space",
        "extended",
        "--allow-space-change",
    )
    (error,) = _errors(extended)
    assert "optimizer was categorical {'sgd', 'adam'}" in error
    assert "use another --study-name" in error


def test_a_space_file_study_stores_fixed_values_and_skips_report_runs_outside_it(
    run_cli, tiny_dataset
):
    Path("space.toml").write_text(
        'batch_size = 16\nlr_schedule = "cosine"\nepochs = 1\n'
        '[optimizer]\nkind = "categorical"\nchoices = ["sgd", "adam"]\n'
        '[lr]\nkind = "log"\nlow = 1e-3\nhigh = 1e-1\n'
    )
    result = _optimize(run_cli, tiny_dataset, "--space", "space.toml", "--trials", 2)
    assert result.exit_code == 0, result.output
    assert "the report's configurations are not in this space" in result.output
    for trial in _study().trials:
        config = trial.user_attrs["config"]
        assert (config["batch_size"], config["lr_schedule"], config["epochs"]) == (16, "cosine", 1)
        assert set(trial.params) == {"optimizer", "lr"}
    refused = _optimize(run_cli, tiny_dataset, "--space", "space.toml", "--max-epochs", 3)
    assert "a space file sets its own" in _errors(refused)[0]
