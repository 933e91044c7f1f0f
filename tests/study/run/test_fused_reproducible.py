"""A fused study is reproducible from its seed, however far behind its background thread is."""

import time

import optuna

import study.run.background as background_module
from study.results import dashboard as dashboard_module

from ..helpers import fast_study_args

ARGS = ["--trials", 14, "--fuse", 3, "--max-epochs", 4, "--pruner", "hyperband", "--seed", 3]


def _study(run_cli, data, name: str) -> list[tuple]:
    storage = f"sqlite:///{name}.db"
    result = run_cli(*fast_study_args(data, *ARGS, "--storage", storage))
    assert result.exit_code == 0, result.output
    trials = optuna.load_study(study_name="catdog", storage=storage).trials
    return [(t.number, t.state.name, t.params, len(t.intermediate_values)) for t in trials]


def test_a_fused_study_samples_and_prunes_the_same_with_its_bookkeeping_behind(
    run_cli, tiny_dataset, monkeypatch
):
    # Each trial's curves take a while to draw: with the bookkeeping on the thread, trials are
    # told well after they end. The sampler (TPE after its 10 random trials) and the pruner
    # must still see the study as they do with everything done at once.
    publish = dashboard_module.TrialCurvesPublisher.__call__

    def slow_publish(self, trial, outcome):
        time.sleep(0.3)
        publish(self, trial, outcome)

    monkeypatch.setattr(dashboard_module.TrialCurvesPublisher, "__call__", slow_publish)
    at_once = _study(run_cli, tiny_dataset, "at-once")
    monkeypatch.setattr(background_module, "THREAD_DEVICES", ("cuda", "cpu"))
    beside = _study(run_cli, tiny_dataset, "beside")
    assert beside == at_once
    states = {state for _, state, _, _ in at_once}
    assert "PRUNED" in states and "COMPLETE" in states  # both decisions were taken
