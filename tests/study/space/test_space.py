import optuna
import pytest

from catdog.config import TrainConfig
from catdog.paper import PAPER_RUNS
from study.run.study import make_sampler
from study.space.builtin import extended_space, report_space
from study.space.dimensions import SpaceError, to_config
from study.space.resolve import resolve_space

SGD_ONLY = {"momentum", "nesterov"}
ADAM_ONLY = {"beta1"}


def test_the_report_space_is_its_four_knobs_with_an_unchanged_fingerprint():
    space = report_space(20)
    assert [d.name for d in space.dimensions] == ["optimizer", "lr", "shuffle", "epochs"]
    # Studies store this fingerprint: if it changed, every existing study would be refused.
    assert space.fingerprint() == "c67b1c6915b94600"
    assert not space.is_conditional


def test_extended_space_samples_conditional_parameters_only_where_they_apply():
    space = extended_space(10)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=make_sampler(space, seed=0))
    configs = []

    def objective(trial: optuna.Trial) -> float:
        config = to_config(space.suggest(trial))  # must always be a valid config
        configs.append(config)
        # Something for TPE to model once past its random start-up trials.
        return abs(config.lr - 0.01) + config.weight_decay + 0.1 * (config.optimizer == "sgd")

    study.optimize(objective, n_trials=150)
    optimizers = set()
    for trial, config in zip(study.trials, configs, strict=True):
        optimizer = trial.params["optimizer"]
        optimizers.add(optimizer)
        params = set(trial.params)
        assert (params >= SGD_ONLY) == (optimizer == "sgd"), trial.params
        assert not (SGD_ONLY & params) or optimizer == "sgd", trial.params
        assert (params >= ADAM_ONLY) == (optimizer in ("adam", "adamw")), trial.params
        # What a trial of one optimizer does not search keeps the report's value.
        if optimizer != "sgd":
            assert (config.momentum, config.nesterov) == (0.0, False)
        else:
            assert config.beta1 == 0.9
        if not trial.params["use_weight_decay"]:
            assert "weight_decay" not in params and config.weight_decay == 0.0
    assert optimizers == {"sgd", "adam", "adamw"}
    switched = {t.params["use_weight_decay"] for t in study.trials}
    assert switched == {True, False}


def test_the_report_s_runs_are_points_of_the_extended_space():
    space = extended_space(20)
    for run in PAPER_RUNS:
        config = TrainConfig(**run.params(20))
        params = space.params_for(config)
        assert params["batch_size"] == 128 and params["lr_schedule"] == "constant"
        assert params["use_weight_decay"] is False and params["rotation_degrees"] == 2.0
        trial = optuna.trial.FixedTrial(params)
        assert to_config(space.suggest(trial)) == config


def test_a_space_refuses_a_config_it_cannot_give_naming_each_setting():
    config = TrainConfig(optimizer="adamw", batch_size=64, lr_schedule="cosine", epochs=5)
    with pytest.raises(SpaceError) as raised:
        report_space(3).params_for(config)
    lines = str(raised.value).splitlines()
    assert len(lines) == 4, lines
    assert "optimizer = 'adamw' is outside optimizer in {'sgd', 'adam'}" in lines[0]
    assert "epochs = 5 is outside epochs integer in [1, 3]" in lines[1]
    assert "batch_size = 64, but this space leaves batch_size at 128" in lines[2]
    assert "lr_schedule = 'cosine'" in lines[3]


def test_warm_up_is_capped_below_the_number_of_epochs():
    assert to_config({"epochs": 2, "warmup_epochs": 3}).warmup_epochs == 1
    assert to_config({"epochs": 1, "warmup_epochs": 2}).warmup_epochs == 0
    assert to_config({"epochs": 8, "warmup_epochs": 3}).warmup_epochs == 3


def test_changing_categorical_choices_is_incompatible_but_a_wider_range_is_not():
    held = {}
    for dimension in report_space(5).dimensions:
        held.update(dimension.distributions())
    assert report_space(9).incompatible_with(held) == []
    problems = extended_space(5).incompatible_with(held)
    assert len(problems) == 1 and problems[0].startswith("optimizer was categorical")


def test_an_unknown_space_name_says_what_is_accepted():
    with pytest.raises(SpaceError, match="use report, extended or a .toml file"):
        resolve_space("wide")
