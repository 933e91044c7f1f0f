"""Your own photos: any class folders, from `data synth` to `report`, and the cats and dogs of
studies and model files made before other classes were possible, unchanged."""

import csv
import io
import json
import re
import shutil
import sqlite3

import optuna
import pytest
from safetensors import safe_open
from safetensors.torch import save_file

from catdog.modelfile import sha256_of, write_checksum
from study.results.summary import study_summary

from ..helpers import fast_study_args, one_error_line

STORAGE = "sqlite:///study.db"
SHAPES = ("ellipses", "polygons", "stars")
QUICK = ("--max-epochs", 2, "--no-seed-configs", "--pruner", "none", "--storage", STORAGE)


def _files(folder):
    """Every file below `folder`, with its size and modification time."""
    return {(p, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def test_data_synth_writes_three_shapes_in_folders_named_after_them(run_cli, in_tmp):
    made = run_cli("data", "synth", "--classes", 3, "--train-per-class", 5, "--test-per-class", 2)
    assert made.exit_code == 0, made.output
    assert "wrote 15 training and 6 test images in ellipses, polygons, stars" in made.output
    data = in_tmp / "storage" / "data" / "synthetic"
    for split in ("training_set", "test_set"):
        assert sorted(p.name for p in (data / split).iterdir()) == list(SHAPES)


def test_three_classes_from_data_check_to_report(run_cli, in_tmp, tiny_shapes):
    data = tiny_shapes
    checked = run_cli("data", "check", data)
    assert checked.exit_code == 0, checked.output
    assert "  3 classes: ellipses, polygons, stars" in checked.output
    assert "training_set: 16 ellipses, 16 polygons, 16 stars usable" in checked.output
    assert "warning" not in checked.output

    trained = run_cli(*fast_study_args(data, "--trials", 2, *QUICK))
    assert trained.exit_code == 0, trained.output
    assert "48 training, 18 test images of ellipses, polygons, stars" in trained.output
    study = optuna.load_study(study_name="catdog", storage=STORAGE)
    assert study.user_attrs["classes"] == list(SHAPES)
    note = study_summary(study)  # the dashboard's study note
    assert "classes: ellipses, polygons, stars" in note
    assert "report: test accuracy (published)" not in note  # about cats and dogs alone
    assert "those runs tend to answer it: about 33 % (the report's two classes: 50 %)" in note

    assert run_cli("export", "--out", "shapes.safetensors", "--storage", STORAGE).exit_code == 0
    shown = run_cli("show", "shapes.safetensors")
    assert "classes     ellipses, polygons, stars" in shown.output.splitlines()

    test_set = data / "test_set"
    predicted = run_cli("predict", "shapes.safetensors", test_set, "--format", "csv")
    assert predicted.exit_code == 0, predicted.output
    rows = list(csv.DictReader(io.StringIO(predicted.stdout)))
    assert list(rows[0]) == ["path", "label", "p_ellipses", "p_polygons", "p_stars", "error"]
    assert len(rows) == 18 and {row["label"] for row in rows} <= set(SHAPES)
    for row in rows:
        assert sum(float(row[f"p_{name}"]) for name in SHAPES) == pytest.approx(1, abs=1e-5)
    text = run_cli("predict", "shapes.safetensors", test_set / "stars").stdout.splitlines()
    assert all(re.fullmatch(r".*\.jpg: (ellipses|polygons|stars) [01]\.\d{4}", t) for t in text)

    before = _files(in_tmp)
    reported = run_cli("report", "--out", "rep", "--storage", STORAGE)
    assert reported.exit_code == 0, reported.output
    assert {f for f in _files(in_tmp) if "rep" not in f[0].relative_to(in_tmp).parts} == before
    best = int(re.search(r"best trial (\d+) on ", reported.output)[1])
    assert f"best trial {best} on {test_set}, class by class" in reported.output
    for name in SHAPES:
        assert re.search(rf"^  {name} +\d+\.\d % of 6 images right$", reported.output, re.M)
    assert "balanced accuracy" not in reported.output  # 6 test images of each class
    assert "wrote rep/confusion-matrix.png" in reported.output
    summary = (in_tmp / "rep" / "summary.md").read_text()
    assert "| class (test images) | answer ellipses | answer polygons | answer stars |" in summary
    counts = re.findall(
        r"^\| (?:ellipses|polygons|stars) \(6\) \| (\d+) \| (\d+) \| (\d+) \|", summary, re.M
    )
    assert len(counts) == 3 and all(sum(map(int, row)) == 6 for row in counts)


def test_a_study_of_cats_and_dogs_made_before_classes_continues_unchanged(run_cli, tiny_dataset):
    args = fast_study_args(tiny_dataset, "--trials", 1, *QUICK)
    assert run_cli(*args).exit_code == 0
    with sqlite3.connect("study.db") as connection:  # as every study made before was stored
        connection.execute("DELETE FROM study_user_attributes WHERE key = 'classes'")
    before = optuna.load_study(study_name="catdog", storage=STORAGE)
    (old,) = before.trials

    continued = run_cli(*args)
    assert continued.exit_code == 0, continued.output
    study = optuna.load_study(study_name="catdog", storage=STORAGE)
    kept, new = study.trials
    assert (kept.params, kept.value, kept.user_attrs) == (old.params, old.value, old.user_attrs)
    assert new.state == optuna.trial.TrialState.COMPLETE
    assert "classes" not in study.user_attrs  # nothing stored about it changes
    assert "report: test accuracy (published)" in study_summary(study)

    exported = ["export", "--out", "new.safetensors", "--trial", new.number]
    assert run_cli(*exported, "--storage", STORAGE).exit_code == 0
    labels = run_cli("predict", "new.safetensors", tiny_dataset / "test_set").stdout
    assert {line.split()[-2] for line in labels.splitlines()} <= {"cat", "dog"}


def test_a_study_refuses_a_data_set_of_other_classes(run_cli, tiny_dataset, tiny_shapes):
    assert run_cli(*fast_study_args(tiny_dataset, "--trials", 1, *QUICK)).exit_code == 0
    result = run_cli(*fast_study_args(tiny_shapes, "--trials", 1, *QUICK))
    assert one_error_line(result) == (
        "Error: study 'catdog' learns the classes cat, dog; this data set has ellipses, "
        "polygons, stars: use another --study-name"
    )
    assert "decoding" not in result.output  # refused from the folder names, before any image
    assert len(optuna.load_study(study_name="catdog", storage=STORAGE).trials) == 1


def _train_val_test(root, tiny_dataset):
    shutil.copytree(tiny_dataset / "training_set", root / "train")
    shutil.copytree(tiny_dataset / "test_set", root / "val")
    shutil.copytree(tiny_dataset / "test_set", root / "test")
    return root


def test_a_val_folder_judges_the_trials_and_the_test_set_comes_last(run_cli, in_tmp, tiny_dataset):
    data = _train_val_test(in_tmp / "parts", tiny_dataset)
    result = run_cli(*fast_study_args(data, "--trials", 1, "--image-size", 64, *QUICK))
    assert result.exit_code == 0, result.output
    assert "40 training, 16 validation and 16 test images" in result.output
    study = optuna.load_study(study_name="catdog", storage=STORAGE)
    assert study.user_attrs["data"] == "images, 64 px, validation split val/"
    assert study.metric_names == ["validation error (1 - accuracy)"]
    (trial,) = study.trials
    assert trial.user_attrs["eval_split"] == "val" and "test_accuracy" in trial.user_attrs

    both = run_cli(*fast_study_args(data, "--trials", 1, *QUICK, "--val-fraction", 0.2))
    assert one_error_line(both).startswith(
        f"Error: {data} has its own validation split, val/, which judges the trials: "
        "--val-fraction 0.2 would hold out another"
    )


def test_unequal_classes_are_warned_about_and_scored_with_balanced_accuracy(
    run_cli, in_tmp, tiny_dataset
):
    data = in_tmp / "unequal"
    shutil.copytree(tiny_dataset, data)
    for split, keep in (("training_set", 8), ("test_set", 3)):
        for path in sorted((data / split / "dogs").iterdir())[keep:]:
            path.unlink()
    checked = run_cli("data", "check", data)
    assert checked.exit_code == 0, checked.output
    assert "training_set: 20 cats, 8 dogs usable" in checked.output
    warnings = [line for line in checked.output.splitlines() if "warning" in line]
    assert [line.split(":")[0].strip() for line in warnings] == ["warning", "warning"]
    assert "its largest class has 2.5 times the images of its smallest" in warnings[0]
    assert "2.7 times" in warnings[1]

    assert run_cli(*fast_study_args(data, "--trials", 1, *QUICK)).exit_code == 0
    reported = run_cli("report", "--out", "rep", "--storage", STORAGE)
    assert reported.exit_code == 0, reported.output
    line = next(t for t in reported.output.splitlines() if "balanced accuracy" in t)
    assert re.search(r"balanced accuracy \d+\.\d % .* differ in size up to 2\.7 times", line)
    summary = (in_tmp / "rep" / "summary.md").read_text()
    assert "| cat (8) |" in summary and "| dog (3) |" in summary
    assert "Balanced accuracy" in summary


def test_report_without_the_test_set_skips_the_confusion_matrix_with_the_reason(
    run_cli, in_tmp, tiny_dataset
):
    data = in_tmp / "photos"
    shutil.copytree(tiny_dataset, data)
    assert run_cli(*fast_study_args(data, "--trials", 1, *QUICK)).exit_code == 0
    shutil.rmtree(data)
    reported = run_cli("report", "--out", "rep", "--storage", STORAGE)
    assert reported.exit_code == 0, reported.output
    assert (
        f"skipped confusion-matrix.png: data folder {data} does not exist; give --data with "
        "the set trial 0 learned"
    ) in reported.output
    moved = in_tmp / "moved"
    shutil.copytree(tiny_dataset, moved)
    given = run_cli("report", "--out", "rep", "--storage", STORAGE, "--data", moved)
    assert "wrote rep/confusion-matrix.png" in given.output


def test_report_on_another_data_set_says_why_its_accuracy_differs_from_the_stored_one(
    run_cli, in_tmp, tiny_dataset
):
    data, other = in_tmp / "photos", in_tmp / "other"
    shutil.copytree(tiny_dataset, data)
    shutil.copytree(tiny_dataset, other)
    assert run_cli(*fast_study_args(data, "--trials", 1, *QUICK)).exit_code == 0
    with sqlite3.connect("study.db") as db:  # a stored figure no test set here gives
        db.execute(
            "UPDATE trial_user_attributes SET value_json = '0.123' WHERE key = ?",
            ["test_accuracy"],
        )

    def best_line(*args):
        result = run_cli("report", "--out", "rep", "--storage", STORAGE, *args)
        assert result.exit_code == 0, result.output
        return next(t for t in result.output.splitlines() if "class by class" in t)

    assert "the trial stored 12.3 %, scored on its own device" in best_line()
    assert "the trial stored 12.3 %, scored on its own device" in best_line("--data", data)
    assert "the trial stored 12.3 % on the test set it trained with" in best_line("--data", other)


def test_a_model_file_that_names_no_classes_is_a_cat_and_dog_model(
    run_cli, make_model, tiny_dataset
):
    path = make_model()
    with safe_open(str(path), framework="pt") as handle:  # as the first model files were written
        info = json.loads(handle.metadata()["catdog"])
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    del info["class_names"]
    save_file(tensors, str(path), metadata={"catdog": json.dumps(info)})
    write_checksum(path, sha256_of(path))
    shown = run_cli("show", path)
    assert shown.exit_code == 0, shown.output
    assert "classes     cat, dog" in shown.output.splitlines()
    predicted = run_cli("predict", path, tiny_dataset / "test_set", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(predicted.stdout)))
    assert list(rows[0])[:4] == ["path", "label", "p_cat", "p_dog"]
    assert {row["label"] for row in rows} <= {"cat", "dog"} and len(rows) == 16
