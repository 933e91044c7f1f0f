"""The search benchmark (benchmarks/search): record a grid, replay studies on a tiny recording."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from benchmarks.search import record
from benchmarks.search.bias import bias_markdown, bias_table
from benchmarks.search.candidates import candidate
from benchmarks.search.compare import markdown, run_comparison, summarise
from benchmarks.search.recording import Recording, Run, load_recording, log_grid
from benchmarks.search.replay import replay_study

EPOCHS = 4
LRS = {"sgd": (0.001, 0.01, 0.1), "adam": (0.0001, 0.001, 0.01)}
GOOD = {("sgd", 0.01), ("adam", 0.001)}  # these learn; every other run stays at chance
# The report's runs stay at chance too, each with a higher test loss than the one queued before
# it, but below the other chance runs: a median pruner would stop each of them after epoch 1.
REPORT_LOSS = {("sgd", 0.1, True): 1.0, ("adam", 0.01, True): 1.1}
REPORT_LOSS |= {("sgd", 0.1, False): 1.2, ("adam", 0.01, False): 1.3}


def _run(optimizer: str, lr: float, shuffle: bool, seed: int, **changes) -> Run:
    good = (optimizer, lr) in GOOD and shuffle
    noise = 0.01 * seed
    start = REPORT_LOSS.get((optimizer, lr, shuffle), 1.6)
    accuracy = [0.6 + 0.08 * e + noise if good else 0.5 for e in range(EPOCHS)]
    loss = [0.65 - 0.1 * e - noise if good else start + 0.1 * e for e in range(EPOCHS)]
    values = dict(
        optimizer=optimizer,
        lr=lr,
        shuffle=shuffle,
        seed=seed,
        train_loss=loss,
        train_accuracy=accuracy,
        test_loss=loss,
        test_accuracy=accuracy,
        seconds=[2.0] * EPOCHS,
    )
    return Run(**(values | changes))


def tiny_recording(seeds=(0, 1), changes_of: dict | None = None) -> Recording:
    """Every (optimizer, lr, shuffle, seed); changes_of replaces fields of some configurations."""
    changes_of = changes_of or {}
    runs = [
        _run(optimizer, lr, shuffle, seed, **changes_of.get((optimizer, lr, shuffle), {}))
        for seed in seeds
        for optimizer, lrs in LRS.items()
        for lr in lrs
        for shuffle in (True, False)
    ]
    return Recording({"data": "hand-made", "max_epochs": EPOCHS}, runs)


def test_report_runs_come_first_and_are_never_pruned(monkeypatch):
    outcome = replay_study(tiny_recording(), candidate("median-w0-s1"), seed=3, trials=20)
    report = outcome.trials[:4]
    assert [t.paper_run for t in report] == [
        "SGD lr 0.1, shuffle on",
        "Adam lr 0.01, shuffle on",
        "SGD lr 0.1, shuffle off",
        "Adam lr 0.01, shuffle off",
    ]
    assert all(t.state == "complete" and t.epochs_run == t.epochs == EPOCHS for t in report)
    assert all(t.paper_run is None for t in outcome.trials[4:])
    assert outcome.count("pruned") > 0  # the same pruner does stop searched trials
    # Were they prunable, the same pruner would stop the last three after epoch 1.
    monkeypatch.setattr("benchmarks.search.replay.is_prunable", lambda _attrs: True)
    prunable = replay_study(tiny_recording(), candidate("median-w0-s1"), seed=3, trials=4)
    assert [(t.state, t.epochs_run) for t in prunable.trials] == [("complete", 4)] + [
        ("pruned", 1)
    ] * 3


def test_each_trial_reads_the_recorded_lr_nearest_in_log_space():
    recording = tiny_recording()
    outcome = replay_study(recording, candidate("none"), seed=0, trials=20)
    for t in outcome.trials:
        grid = LRS[t.optimizer]
        assert t.grid_lr in grid
        assert t.grid_lr == min(grid, key=lambda g: abs(math.log(g / t.lr)))
        run = recording.find(t.optimizer, t.grid_lr, t.shuffle, t.recorded_seed)
        assert t.test_accuracy == run.test_accuracy[t.epochs_run - 1]
    assert {t.recorded_seed for t in outcome.trials} == {0, 1}  # seed noise, as real trials


def test_epochs_are_counted_as_trained():
    outcome = replay_study(tiny_recording(), candidate("median-w0-s1"), seed=1, trials=20)
    assert outcome.epochs == sum(t.epochs_run for t in outcome.trials)
    assert outcome.seconds == pytest.approx(2.0 * outcome.epochs)
    for t in outcome.trials:
        if t.state == "complete":
            assert t.epochs_run == t.epochs
        else:
            assert 1 <= t.epochs_run < t.epochs
    unpruned = replay_study(tiny_recording(), candidate("none"), seed=1, trials=20)
    assert unpruned.count("pruned") == 0
    assert unpruned.epochs == sum(t.epochs for t in unpruned.trials)


def test_objective_accuracy_picks_the_most_accurate_finished_trial():
    outcome = replay_study(
        tiny_recording(), candidate("today"), seed=2, trials=20, objective="accuracy"
    )
    finished = [t for t in outcome.trials if t.state == "complete"]
    assert outcome.best.test_accuracy == max(t.test_accuracy for t in finished)


def test_a_diverged_run_fails_its_trial_after_the_epoch_it_diverged_in():
    # Adam lr 0.01 (a report run) diverges in epoch 2 of every recorded seed.
    diverged = dict(
        test_loss=[0.7], test_accuracy=[0.5], train_loss=[0.7], train_accuracy=[0.5],
        seconds=[2.0], diverged_in_epoch=2,
    )  # fmt: skip
    recording = tiny_recording(changes_of={("adam", 0.01, True): diverged})
    outcome = replay_study(recording, candidate("today"), seed=0, trials=6)
    adam = outcome.trials[1]
    assert adam.paper_run == "Adam lr 0.01, shuffle on"
    assert adam.state == "failed" and adam.epochs_run == 2


def test_summary_compares_candidates_seed_by_seed(tmp_path):
    path = tmp_path / "tiny.json"
    tiny_recording().save(path)
    assert load_recording(path).runs == tiny_recording().runs
    rows = run_comparison(
        path, ["today", "none"], seeds=range(3), objectives=("loss", "accuracy"), trials=12
    )
    assert len(rows) == 3 * 2 * 2
    table = summarise(rows)
    fields = {"best_acc", "best_acc_sd", "vs_baseline", "max_final_acc", "epochs", "pruned"}
    assert fields | {"region_trained", "best_in_region", "cost_vs_baseline"} <= set(table[0])
    today = next(r for r in table if r["candidate"] == "today" and r["objective"] == "loss")
    assert today["vs_baseline"] == 0 and today["cost_vs_baseline"] == 1
    none = next(r for r in table if r["candidate"] == "none" and r["objective"] == "loss")
    assert none["pruned"] == 0 and none["epochs"] >= today["epochs"]
    text = markdown(table, load_recording(path), "tiny")
    assert "| loss | none |" in text and "| accuracy | today |" in text


def test_log_grid_holds_the_report_lrs():
    grid = log_grid(1e-4, 0.3, per_decade=4)
    assert grid[0] == 1e-4 and grid[-1] == 0.3 and 0.1 in grid and 0.01 in grid
    assert len(grid) == 15


def test_record_trains_each_run_once_and_continues(tiny_dataset, in_tmp, capsys):
    out = in_tmp / "recording.json"
    args = ["--data", str(tiny_dataset), "--image-size", "64", "--out", str(out)]
    args += ["--max-epochs", "2", "--optimizers", "adam", "--lrs", "0.001", "0.01"]
    args += ["--shuffle", "on", "--precision", "fp32", "--device", "cpu"]
    assert record.main(args) == 0
    recording = load_recording(out)
    assert recording.meta["precision"] == "fp32" and recording.meta["image_size"] == 64
    assert [(r.lr, r.epochs) for r in recording.runs] == [(0.001, 2), (0.01, 2)]
    assert all(len(r.test_accuracy) == len(r.train_loss) == 2 for r in recording.runs)
    capsys.readouterr()
    assert record.main(args) == 0  # nothing left to train
    assert "2 already recorded" in capsys.readouterr().out
    assert load_recording(out).runs == recording.runs


# With a validation part, every run at chance but the report's two shuffle-on runs: SGD lr 0.1 is
# lucky on the test set (83 %, 77 % on the validation part), Adam lr 0.01 as good on both (81 %),
# whatever the epoch count. At chance, the report's runs' test losses rise in the order they are
# queued, their validation losses fall.
LUCKY = {("sgd", 0.1, True): (0.83, 0.77), ("adam", 0.01, True): (0.81, 0.81)}
REPORT_VAL_LOSS = {("sgd", 0.1, True): 1.3, ("adam", 0.01, True): 1.2}
REPORT_VAL_LOSS |= {("sgd", 0.1, False): 1.1, ("adam", 0.01, False): 1.0}


def tiny_val_recording(lucky: dict = LUCKY, seeds=(0, 1)) -> Recording:
    """Runs trained on part of the training set, scored on a validation part and the test set."""
    runs = []
    for run in tiny_recording(seeds).runs:
        key, noise = (run.optimizer, run.lr, run.shuffle), 0.01 * run.seed
        if key in lucky:
            test, val = (accuracy + noise for accuracy in lucky[key])
            test_loss, val_loss = [1 - test] * EPOCHS, [1 - val] * EPOCHS
        else:
            test = val = 0.5
            test_loss = [REPORT_LOSS.get(key, 1.6) + 0.1 * e for e in range(EPOCHS)]
            val_loss = [REPORT_VAL_LOSS.get(key, 1.6) + 0.1 * e for e in range(EPOCHS)]
        changes = dict(test_accuracy=[test] * EPOCHS, val_accuracy=[val] * EPOCHS)
        runs.append(replace(run, test_loss=test_loss, val_loss=val_loss, **changes))
    meta = {"data": "hand-made", "max_epochs": EPOCHS, "val_fraction": 0.2, "val_images": 40}
    return Recording(meta | {"train_images": 160, "test_images": 100}, runs)


def test_a_study_can_select_on_the_validation_part_or_on_the_test_set():
    chosen = {}
    for select in ("test", "val"):
        outcome = replay_study(
            tiny_val_recording(), candidate("none"), seed=0, trials=12, objective="accuracy",
            select=select,
        )  # fmt: skip
        finished = [t for t in outcome.trials if t.state == "complete"]
        assert outcome.best.accuracy(select) == max(t.accuracy(select) for t in finished)
        chosen[select] = outcome.best
    assert chosen["test"].paper_run == "SGD lr 0.1, shuffle on"  # lucky on the test set
    assert chosen["val"].paper_run == "Adam lr 0.01, shuffle on"
    assert chosen["test"].val_accuracy < chosen["test"].test_accuracy  # it reads high


def test_selecting_on_validation_prunes_on_its_loss(monkeypatch):
    # Were the report's runs prunable, their rising test losses would stop the last three after
    # epoch 1; their validation losses fall, so selecting on validation stops none.
    monkeypatch.setattr("benchmarks.search.replay.is_prunable", lambda _attrs: True)
    runs = {}
    for select in ("test", "val"):
        outcome = replay_study(
            tiny_val_recording(lucky={}), candidate("median-w0-s1"), seed=3, trials=4,
            select=select,
        )  # fmt: skip
        runs[select] = [(t.state, t.epochs_run) for t in outcome.trials]
    assert runs["test"] == [("complete", 4)] + [("pruned", 1)] * 3
    assert runs["val"] == [("complete", 4)] * 4


def test_a_recording_without_validation_is_replayed_on_the_test_set_only(tmp_path):
    with pytest.raises(ValueError, match="no validation part"):
        replay_study(tiny_recording(), candidate("none"), seed=0, trials=4, select="val")
    path = tmp_path / "tiny.json"
    tiny_recording().save(path)
    with pytest.raises(ValueError, match="no validation part"):
        run_comparison(path, ["none"], seeds=range(1), selects=("test", "val"), trials=4)


def test_compare_measures_how_far_the_test_set_flatters_the_trial_it_picked(tmp_path):
    path = tmp_path / "tiny-val.json"
    tiny_val_recording().save(path)
    rows = run_comparison(
        path, ["none"], seeds=range(4), objectives=("accuracy",), selects=("test", "val"), trials=8
    )
    table = {r["select"]: r for r in bias_table(rows)}
    on_test, on_val = table["test"], table["val"]
    # Picked on the test set: SGD lr 0.1, 6 points better there than on the validation part,
    # while the other trials score alike on both sets (a small gap).
    assert on_test["optimism"][0] == pytest.approx(0.06)
    assert 0 < on_test["gap"][0] < 0.06 and on_test["bias"][0] > 0.03
    # Picked on the validation part: Adam lr 0.01, its test figure as good as its validation.
    assert on_val["optimism"][0] == pytest.approx(0.0)
    assert on_test["test_acc"][0] > on_val["test_acc"][0]  # the flattered figure is higher
    text = bias_markdown(bias_table(rows), load_recording(path), rows)
    # The best trials read seed 1's runs (1 point better) where a study drew one.
    assert "| none | accuracy | test | 4 | 84.0 ± 0.0 | 84.0 | 78.0 ± 0.0 | 84.0 | 78.0 |" in text
    assert "| none | accuracy | val | 4 | 81.8 ± 0.5 |" in text
    assert "- objective accuracy: best trial's test accuracy, picked on validation minus " in text


def test_a_partial_recording_replays_with_the_configurations_it_holds():
    # Still being written: no shuffle-off runs yet, and SGD only up to lr 0.01.
    recording = tiny_recording()
    recording.runs = [
        r for r in recording.runs if r.shuffle and (r.optimizer, r.lr) != ("sgd", 0.1)
    ]
    with pytest.raises(KeyError):  # without --partial: refused, as a broken recording would be
        replay_study(recording, candidate("none"), seed=0, trials=8)
    outcome = replay_study(recording, candidate("none"), seed=0, trials=20, partial=True)
    assert [(t.paper_run, t.state, t.epochs_run) for t in outcome.trials[:4]] == [
        ("SGD lr 0.1, shuffle on", "failed", 0),
        ("Adam lr 0.01, shuffle on", "complete", EPOCHS),
        ("SGD lr 0.1, shuffle off", "failed", 0),
        ("Adam lr 0.01, shuffle off", "failed", 0),
    ]
    for t in outcome.trials:  # a recorded lr within half a step of a 4-a-decade grid, or failed
        lrs = recording.grid_lrs(t.optimizer, t.shuffle)
        recorded = any(abs(math.log10(lr / t.lr)) <= 0.125 for lr in lrs)
        assert (t.state != "failed") == recorded, t
    assert outcome.best is not None and outcome.best.state == "complete"
