"""`optimize --jobs N`: N worker processes share one study without losing or repeating trials."""

import optuna
from optuna.trial import TrialState

import study.run.runner
from catdog.cache import is_cached
from catdog.paper import PAPER_RUNS
from study.attrs import PAPER_RUN_ATTR
from study.data.source import cache_dir_for

from ..helpers import fast_study_args

STORAGE = "sqlite:///study.db"


def test_two_jobs_run_exactly_the_requested_trials_each_once(run_cli, tiny_dataset):
    result = run_cli(
        *fast_study_args(
            tiny_dataset, "--trials", 6, "--max-epochs", 2, "--jobs", 2, "--storage", STORAGE
        )
    )
    assert result.exit_code == 0, result.output
    trials = optuna.load_study(study_name="catdog", storage=STORAGE).trials
    assert len(trials) == 6
    assert sorted(t.number for t in trials) == list(range(6))  # each number once, none missing
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    # The report's four queued configurations were each taken by one worker only.
    labels = sorted(t.user_attrs[PAPER_RUN_ATTR] for t in trials if PAPER_RUN_ATTR in t.user_attrs)
    assert labels == sorted(run.label for run in PAPER_RUNS)


def test_workers_find_the_data_set_decoded_once_before_they_start(
    run_cli, tiny_dataset, monkeypatch
):
    cached_at_start = []

    def fake_workers(plan, progress, stops):
        root, image_size = plan.source.root, plan.source.image_size
        cache_dir = cache_dir_for(root)
        splits = (root / "training_set", root / "test_set")
        cached_at_start.append(all(is_cached(s, image_size, cache_dir) for s in splits))

    monkeypatch.setattr(study.run.runner, "run_workers", fake_workers)
    args = fast_study_args(tiny_dataset, "--trials", 2, "--jobs", 2, "--storage", STORAGE)
    first = run_cli(*args)
    assert first.exit_code == 0, first.output
    assert "once for all workers" in first.output
    second = run_cli(*args)  # the cache is there: nothing to decode
    assert second.exit_code == 0, second.output
    assert "once for all workers" not in second.output
    assert cached_at_start == [True, True]
