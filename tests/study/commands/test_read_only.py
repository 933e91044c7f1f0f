"""The commands that only read a study create nothing: no database, side file, lock or folder.

Where there is no study they say so in one line and exit 1, in the folder as it was.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import optuna
import pytest
from sqlalchemy.engine import make_url

from study.attrs import CHECKPOINT_ATTR
from study.store.artifacts import open_artifact_store
from study.store.storage import open_storage

from ..helpers import fast_study_args, one_error_line, read_only
from ..workers import serve_dashboard

# Every command that reads a study and nothing else (report and export write their --out).
READERS = [
    ["dashboard"],
    ["export", "--out", "model.safetensors"],
    ["report"],
    ["report", "--out", "plots"],
]


@pytest.fixture(autouse=True)
def never_serve(monkeypatch):
    """A dashboard here must stop before it listens."""

    def serve(*args, **kwargs):
        raise AssertionError("the dashboard was about to listen")

    monkeypatch.setattr("study.results.server.serve", serve)


def _everything(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("args", READERS, ids=" ".join)
def test_in_an_empty_folder_it_says_there_is_no_study_and_creates_nothing(run_cli, in_tmp, args):
    result = run_cli(*args)
    assert one_error_line(result) == (
        "Error: no study database at storage/catdog.db: run `catdog-study optimize` first, "
        "or give --storage the one to read"
    )
    assert _everything(in_tmp) == []


@pytest.mark.parametrize("args", READERS, ids=" ".join)
def test_a_mistyped_storage_path_creates_nothing(run_cli, in_tmp, args):
    result = run_cli(*args, "--storage", "sqlite:///typo/catdog.db")
    assert "Error: no study database at typo/catdog.db" in one_error_line(result)
    assert _everything(in_tmp) == []


@pytest.mark.parametrize("args", READERS, ids=" ".join)
def test_an_empty_database_file_is_no_study_and_stays_empty(run_cli, in_tmp, args):
    Path("empty.db").touch()
    result = run_cli(*args, "--storage", "sqlite:///empty.db")
    assert one_error_line(result) == "Error: no study database at empty.db: the file is empty"
    assert _everything(in_tmp) == ["empty.db"]
    assert Path("empty.db").stat().st_size == 0


@pytest.mark.parametrize("args", READERS, ids=" ".join)
def test_a_database_without_optuna_tables_is_no_study_and_is_left_alone(run_cli, in_tmp, args):
    with sqlite3.connect("other.db") as connection:
        connection.execute("CREATE TABLE notes (text)")
    before = Path("other.db").read_bytes()
    result = run_cli(*args, "--storage", "sqlite:///other.db")
    assert one_error_line(result) == (
        "Error: no study database at other.db: it holds no Optuna tables"
    )
    assert _everything(in_tmp) == ["other.db"]
    assert Path("other.db").read_bytes() == before


@pytest.mark.parametrize("args", [a for a in READERS if a[0] != "dashboard"], ids=" ".join)
def test_another_study_name_lists_the_studies_there(run_cli, in_tmp, args):
    for name in ("first", "second"):
        optuna.create_study(storage="sqlite:///two.db", study_name=name)
    result = run_cli(*args, "--storage", "sqlite:///two.db", "--study-name", "third")
    assert one_error_line(result) == (
        "Error: no study named 'third' in sqlite:///two.db; studies there: first, second"
    )
    assert _everything(in_tmp) == ["two.db"]


def test_reading_a_study_made_by_optimize_adds_nothing_beside_it(in_tmp):
    # What optimize leaves: a WAL database, its lock files, the artifact folder.
    storage = open_storage("sqlite:///storage/catdog.db")
    optuna.create_study(storage=storage, study_name="catdog").optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=2
    )
    storage.engine.dispose()
    open_artifact_store("storage/artifacts")
    before = _everything(in_tmp)
    assert "storage/catdog.db.setup.lock" in before

    # As users run them: SQLite removes its -wal and -shm files when the last connection
    # closes, at the latest when the process ends.
    for args in (["report", "--out", "plots"], ["export", "--out", "model.safetensors"]):
        done = subprocess.run(
            [sys.executable, "-m", "study", *args], capture_output=True, text=True, timeout=120
        )
        assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1 and "has no checkpoint" in done.stderr  # none was stored
    after = [p for p in _everything(in_tmp) if not p.startswith("plots")]
    assert after == before  # no -wal or -shm left, no lock, no folder


def test_export_names_a_missing_artifact_folder_and_creates_it_not(run_cli, in_tmp):
    def objective(trial):  # finished, and names a checkpoint the artifact folder should hold
        trial.set_user_attr(CHECKPOINT_ATTR, "0123-abcd")
        return trial.suggest_float("x", 0, 1)

    study = optuna.create_study(storage="sqlite:///study.db", study_name="catdog")
    study.optimize(objective, n_trials=1)
    result = run_cli("export", "--out", "m.safetensors", "--storage", "sqlite:///study.db")
    assert one_error_line(result) == (
        "Error: trial 0's checkpoint 0123-abcd cannot be read: there is no artifact folder "
        "storage/artifacts; check --artifact-dir"
    )
    assert _everything(in_tmp) == ["study.db"]


@pytest.mark.parametrize(
    "args", [["predict", "model.safetensors", "photo.jpg"], ["show", "model.safetensors"]]
)
def test_predict_and_show_without_a_model_file_create_nothing(run_cli, in_tmp, args):
    result = run_cli(*args)
    assert one_error_line(result) == "Error: model.safetensors: no such model file"
    assert _everything(in_tmp) == []


@pytest.mark.parametrize("copied", ["after the run", "while it ran"])
def test_a_study_on_read_only_media_is_read_by_every_reading_command(
    run_cli, in_tmp, tiny_dataset, small_disk, monkeypatch, copied
):
    made = run_cli(*fast_study_args(tiny_dataset, "--trials", 1, "--max-epochs", 1))
    assert made.exit_code == 0, made.output
    assert run_cli("export", "--out", "storage/best.safetensors").exit_code == 0
    left_out = ["cache"]
    if copied == "after the run":  # as the last connection leaves it: no -wal or -shm file
        with sqlite3.connect("storage/catdog.db") as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        left_out += ["*-wal", "*-shm"]
    dvd = small_disk("16m", "dvd")  # a :ro volume, a read-only NFS export, a DVD
    shutil.copytree("storage", dvd / "storage", ignore=shutil.ignore_patterns(*left_out))
    read_only(dvd)
    monkeypatch.chdir(dvd)

    report = run_cli("report", "--out", in_tmp / "plots")
    assert report.exit_code == 0, report.output
    assert "wrote" in report.output and (in_tmp / "plots" / "summary.md").is_file()
    export = run_cli("export", "--out", in_tmp / "again.safetensors")
    assert export.exit_code == 0, export.output
    show = run_cli("show", "storage/best.safetensors")
    assert show.exit_code == 0 and "matches storage/best.safetensors.sha256" in show.output
    nowhere = run_cli("report")  # its plots would go to storage/report, on the same media
    assert one_error_line(nowhere) == (
        "Error: cannot write the plots and summary.md to storage/report: storage is not "
        "writable; give --out a folder you can write"
    )
    assert "trial" in nowhere.output  # the trials were shown first
    with serve_dashboard(in_tmp, f"sqlite:///{dvd}/storage/catdog.db") as url:
        studies = json.load(urllib.request.urlopen(url + "/api/studies", timeout=30))
    assert [s["study_name"] for s in studies["study_summaries"]] == ["catdog"]
    assert "can only be read here: changes are not saved" in (in_tmp / "dashboard.log").read_text()


POSTGRES_URL = os.environ.get("CATDOG_TEST_POSTGRES_URL")


@pytest.mark.skipif(
    not POSTGRES_URL,
    reason="set CATDOG_TEST_POSTGRES_URL to a PostgreSQL database (.ci/run starts a server)",
)
@pytest.mark.parametrize("args", [a for a in READERS if a[0] != "dashboard"], ids=" ".join)
def test_on_postgresql_a_missing_study_is_one_line_naming_what_is_there(run_cli, in_tmp, args):
    result = run_cli(*args, "--storage", POSTGRES_URL, "--study-name", f"absent-{os.getpid()}")
    error = one_error_line(result)
    # A database that never held a study keeps no tables; one that did lists its studies.
    assert "it holds no Optuna tables" in error or "; studies there: " in error
    password = make_url(POSTGRES_URL).password
    assert not password or password not in result.output
    assert _everything(in_tmp) == []
