"""`catdog-study report` and the study summary, on studies built by hand (no training)."""

import re

import optuna
from PIL import Image

from study.results.curves import read_curves
from study.results.plots import PLOTS, SUMMARY_NAME
from study.results.summary import study_summary

from ..made_studies import made_study

STORAGE = "sqlite:///made.db"


def test_curves_come_from_the_validation_split_when_a_trial_chose_on_it():
    both = {
        "epoch_train_loss": [0.9, 0.8],
        "epoch_train_accuracy": [0.5, 0.6],
        "epoch_test_loss": [0.7, 0.6],
        "epoch_test_accuracy": [0.55, 0.65],
        "epoch_val_loss": [0.75, 0.65],
        "epoch_val_accuracy": [0.52, 0.62],
    }
    assert read_curves(both).eval_loss == [0.7, 0.6]
    assert read_curves(both).eval_name == "test"
    on_val = read_curves({**both, "eval_split": "val"})
    assert on_val.eval_loss == [0.75, 0.65]
    assert on_val.eval_accuracy == [0.52, 0.62]
    assert on_val.eval_name == "validation"
    assert read_curves({"epoch_train_loss": []}) is None  # no epoch finished yet


def test_summary_sets_the_report_beside_this_study_and_says_synthetic(in_tmp):
    study = made_study(STORAGE)
    summary = study_summary(study)
    rows = {
        line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
        for line in summary.splitlines()
        if line.startswith("| ") and "lr" in line
    }
    assert rows["SGD lr 0.1, shuffle on"][:4] == ["74.15 %", "64.0 %", "0.3600", "4/4"]
    assert rows["Adam lr 0.01, shuffle on"][:2] == ["84.55 %", "85.0 %"]
    # Still running: no result yet, and it says how far it got.
    assert rows["Adam lr 0.01, shuffle off"][1:4] == ["–", "–", "2/4"]
    assert "running, epoch 2 of 4" in rows["Adam lr 0.01, shuffle off"][4]
    assert "this study (SYNTHETIC data): test accuracy" in summary
    assert "SYNTHETIC" in summary.split("###")[0]
    # Best: the lowest objective value (trial 4's test loss 0.09).
    assert "Trial #4: adam lr 0.003, shuffle on, 6 epochs" in summary
    assert "1 pruned" in summary and "stopped after epoch 2" in summary
    assert "1 running" in summary


def test_report_prints_trials_best_first_and_writes_plots_and_summary(in_tmp, run_cli):
    study = made_study(STORAGE)
    result = run_cli("report", "--out", "rep", "--storage", STORAGE, "--study-name", "made")
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.output
    table = [line.split() for line in result.output.splitlines() if re.match(r"\d+ +[A-Z]", line)]
    assert [row[0] for row in table] == ["4", "1", "6", "0", "2", "3", "5"]
    assert [row[1] for row in table] == ["COMPLETE"] * 5 + ["RUNNING", "PRUNED"]
    assert table[0][2:6] == ["adam", "0.003", "on", "6/6"]
    assert table[-1][5] == "2/8"  # pruned after 2 of its 8 epochs
    for name in PLOTS:
        assert f"wrote rep/{name}" in result.output
        with Image.open(in_tmp / "rep" / name) as image:
            image.verify()
        with Image.open(in_tmp / "rep" / name) as image:
            assert image.format == "PNG"
            assert image.width >= 600 and image.height >= 300
            assert len(image.convert("RGB").getcolors(maxcolors=1 << 24)) > 20  # not blank
    summary = (in_tmp / "rep" / SUMMARY_NAME).read_text()
    assert summary.startswith(study_summary(study))  # the dashboard note, then the rest
    assert "| 4 | COMPLETE | adam | 0.003 | on | 6/6 |" in summary
    assert "![curves-best-trial.png](curves-best-trial.png)" in summary


def test_every_plot_has_axes_labels_and_a_legend(in_tmp):
    study = made_study(STORAGE)
    trials = study.get_trials()
    for name, make in PLOTS.items():
        figure = make(study, trials)
        drawn = [axes for axes in figure.axes if axes.axison]
        assert drawn, name
        for axes in drawn:
            assert axes.get_xlabel() and axes.get_ylabel(), name
            assert axes.get_legend() is not None, name


def test_report_on_a_study_without_finished_trials_skips_plots_with_reasons(in_tmp, run_cli):
    optuna.create_study(storage=STORAGE, study_name="empty")
    result = run_cli("report", "--out", "rep", "--storage", STORAGE, "--study-name", "empty")
    assert result.exit_code == 0, result.output
    assert "skipped curves-best-trial.png: no trial has finished yet" in result.output
    assert not list((in_tmp / "rep").glob("*.png"))
    assert "No trial has finished yet." in (in_tmp / "rep" / SUMMARY_NAME).read_text()


def test_report_on_a_missing_study_is_one_error_line(in_tmp, run_cli):
    made_study(STORAGE)
    result = run_cli("report", "--storage", STORAGE, "--study-name", "nope")
    assert result.exit_code == 1
    assert result.output == f"Error: no study named 'nope' in {STORAGE}; studies there: made\n"
