"""What `catdog-study optimize` leaves for optuna-dashboard: curves per trial, the study note."""

import json
import threading

import optuna
from optuna.trial import TrialState
from optuna_dashboard import get_note
from optuna_dashboard._custom_plot_data import get_plotly_graph_objects
from optuna_dashboard._note import get_note_from_system_attrs
from PIL import Image

from study.results.dashboard import ACCURACY_FIGURE_ID, accuracy_figure, refresh_study_view
from study.results.summary import study_summary
from study.store.artifacts import open_artifact_store

from ..helpers import fast_study_args
from ..made_studies import made_study, made_trial

STORAGE = "sqlite:///study.db"


def _curves_artifact(study, trial):
    """(artifact id, meta) of the trial's learning-curve PNG."""
    metas = [
        json.loads(value)
        for key, value in trial.system_attrs.items()
        if key.startswith("artifacts:")
    ]
    pngs = [m for m in metas if m["filename"] == f"trial-{trial.number}-learning-curves.png"]
    assert len(pngs) == 1, metas
    return pngs[0]["artifact_id"], pngs[0]


def _trial_note(study, trial) -> str:
    system_attrs = study._storage.get_study_system_attrs(study._study_id)
    return get_note_from_system_attrs(system_attrs, trial._trial_id)["body"]


def test_every_trial_gets_its_curves_and_the_study_note_compares_with_the_report(
    run_cli, tiny_dataset, in_tmp
):
    result = run_cli(
        *fast_study_args(tiny_dataset, "--trials", 2, "--max-epochs", 2, "--storage", STORAGE)
    )
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="catdog", storage=STORAGE)
    store = open_artifact_store("storage/artifacts")
    finished = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(finished) == 2
    for trial in finished:
        artifact_id, meta = _curves_artifact(study, trial)
        assert meta["mimetype"] == "image/png"
        with store.open_reader(artifact_id) as png, Image.open(png) as image:
            assert image.format == "PNG" and image.width >= 600
        url = f"/artifacts/{study._study_id}/{trial._trial_id}/{artifact_id}"
        note = _trial_note(study, trial)
        assert f"![learning curves of trial {trial.number}]({url})" in note
        assert f"trial {trial.number}: " in note and "(complete)" in note
        assert "synthetic data, not cats and dogs" in note

    note = get_note(study)
    assert note == study_summary(study)  # refreshed after the last trial
    assert "| SGD lr 0.1, shuffle on | 74.15 % |" in note
    assert "#0 (complete)" in note and "#1 (complete)" in note
    assert "#2 (waiting)" in note  # queued, not run yet by this 2-trial command
    assert "this study (SYNTHETIC data)" in note
    assert "2 complete, 0 pruned" in note

    figures = get_plotly_graph_objects(study._storage.get_study_system_attrs(study._study_id))
    traces = json.loads(figures[ACCURACY_FIGURE_ID])["data"]
    assert [t["name"] for t in traces] == [
        "#0 report: SGD lr 0.1, shuffle on",
        "#1 report: Adam lr 0.01, shuffle on",
    ]
    assert all(len(t["y"]) == 2 for t in traces)


def test_a_pruned_trial_gets_its_curves_up_to_where_it_stopped(run_cli, tiny_dataset, in_tmp):
    # Five earlier trials with a near-perfect test loss: the median pruner (the default) stops
    # every new trial with epochs left after epoch 4.
    study = optuna.create_study(storage=STORAGE, study_name="catdog", direction="minimize")
    for _ in range(5):
        study.add_trial(
            made_trial({"optimizer": "adam", "lr": 1e-3, "shuffle": True, "epochs": 6}, [0.99] * 6)
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
    study = optuna.load_study(study_name="catdog", storage=STORAGE)
    pruned = [t for t in study.trials[5:] if t.state == TrialState.PRUNED]
    assert pruned, "the seeded sampler should draw at least one trial of 5-6 epochs"
    for trial in pruned:
        _curves_artifact(study, trial)
        assert f"(pruned after epoch 4 of {trial.params['epochs']})" in _trial_note(study, trial)
    assert f"{len(pruned)} pruned" in get_note(study)


def test_concurrent_refreshes_leave_a_whole_and_current_note(in_tmp):
    # Several workers end trials at once: each adds its trial, then refreshes. The note and
    # figure are several storage rows each; what is left must be one whole, current rendering.
    made_study(STORAGE)

    def worker(index: int) -> None:
        study = optuna.load_study(study_name="made", storage=STORAGE)
        params = {"optimizer": "sgd", "lr": 0.01 + index / 1000, "shuffle": True, "epochs": 5}
        study.add_trial(made_trial(params, [0.5 + index / 100] * 5))
        refresh_study_view(study)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    study = optuna.load_study(study_name="made", storage=STORAGE)
    assert len(study.trials) == 13
    assert get_note(study) == study_summary(study)
    figures = get_plotly_graph_objects(study._storage.get_study_system_attrs(study._study_id))
    figure = accuracy_figure(study, study.trials).to_json()
    assert len(figure) > 2045  # stored as several rows, so interleaved writes could show
    assert figures[ACCURACY_FIGURE_ID] == figure
