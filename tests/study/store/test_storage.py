"""The study store under several processes at once: each queued trial is taken by one only."""

import multiprocessing
import pickle
import re
import sqlite3

import optuna
import pytest

from study.store.existing import open_existing_storage
from study.store.storage import StorageError, open_storage, parse_storage_url

QUEUED = 120
PROCESSES = 4


def _take_queued_trials(url: str, start, taken) -> None:
    """Ask for trials until the queue is empty, finishing each; put their numbers in `taken`."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="queue", storage=open_storage(url))
    start.wait()  # all processes begin at once, so that they collide
    numbers = []
    try:
        while True:
            trial = study.ask()
            if trial.number >= QUEUED:  # not a queued one: the queue is empty
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                break
            numbers.append(trial.number)
            study.tell(trial, 0.0)
    except Exception as error:  # reported, not raised: the test names it
        numbers.append(f"{type(error).__name__}: {error}")
    taken.put(numbers)


def test_processes_never_take_the_same_queued_trial(tmp_path):
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    study = optuna.create_study(study_name="queue", storage=open_storage(url))
    for i in range(QUEUED):
        study.enqueue_trial({"x": i}, skip_if_exists=False)
    context = multiprocessing.get_context("spawn")
    start, taken = context.Barrier(PROCESSES), context.Queue()
    workers = [
        context.Process(target=_take_queued_trials, args=(url, start, taken))
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    numbers = [n for _ in workers for n in taken.get(timeout=120)]
    for worker in workers:
        worker.join(timeout=60)
    # Before the fix, two processes could both see a trial WAITING and both run it; the second
    # to finish it then failed with "Cannot tell a COMPLETE trial".
    errors = [n for n in numbers if isinstance(n, str)]
    assert errors == []
    assert sorted(numbers) == list(range(QUEUED))
    assert [w.exitcode for w in workers] == [0] * PROCESSES


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "sqlite://tmp/x.db",
            "storage URL 'sqlite://tmp/x.db' has a host part ('tmp'), which SQLite URLs do not "
            "take (SQLAlchemy would read it as the file x.db in this folder): write "
            "sqlite:///tmp/x.db for a path relative to this folder, or sqlite:////tmp/x.db for "
            "an absolute one",
        ),
        ("sqlite://storage", "write sqlite:///storage for a path relative to this folder"),
        (
            "sqlite://me:secret@host:5/x.db",
            "storage URL sqlite://me:***@host:5/x.db has a user, host or port, which SQLite URLs "
            "do not take: write sqlite:///relative/path.db or sqlite:////absolute/path.db",
        ),
        ("sqlite://", "storage URL 'sqlite://' names no database file (SQLite would keep"),
        ("sqlite:///", "storage URL 'sqlite:///' names no database file"),
        ("sqlite:///:memory:", "names no database file"),
        (
            "nosuchdb://x/y",
            "cannot open storage nosuchdb://x/y: unknown kind of database 'nosuchdb'; use "
            "sqlite:///relative/path.db or sqlite:////absolute/path.db, or "
            "postgresql://user:password@host/dbname",
        ),
        ("postgresql+nosuchdriver://h/d", "unknown kind of database 'postgresql+nosuchdriver'"),
        ("not a url", "cannot parse storage URL 'not a url'"),
    ],
)
def test_malformed_storage_urls_are_refused_before_anything_is_created(in_tmp, url, message):
    with pytest.raises(StorageError) as raised:
        parse_storage_url(url)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value) and "secret" not in str(raised.value)
    with pytest.raises(StorageError):
        open_storage(url)  # what optimize opens: refused before a folder, lock or file is made
    assert list(in_tmp.iterdir()) == []


def test_the_right_forms_are_accepted(tmp_path):
    assert parse_storage_url("sqlite:///storage/catdog.db").database == "storage/catdog.db"
    assert parse_storage_url(f"sqlite:///{tmp_path}/x.db").database == f"{tmp_path}/x.db"
    postgres = parse_storage_url("postgresql://me:pw@host/db")
    assert postgres.drivername == "postgresql+psycopg" and postgres.database == "db"


def test_optimize_still_sets_up_a_fresh_store(in_tmp):
    open_storage("sqlite:///storage/catdog.db").engine.dispose()
    assert sorted(p.name for p in (in_tmp / "storage").iterdir()) == [
        "catdog.db",
        "catdog.db.setup.lock",
    ]
    with sqlite3.connect(in_tmp / "storage" / "catdog.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_an_existing_store_opens_without_anything_new_and_can_be_pickled(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(storage=url, study_name="here")
    before = sorted(tmp_path.iterdir())
    opened = open_existing_storage(url)
    copied = pickle.loads(pickle.dumps(opened))  # as Optuna's process pools would
    assert optuna.get_all_study_names(storage=copied) == ["here"]
    written = open_existing_storage(url, writes=True)  # the dashboard: notes can be saved
    optuna.load_study(study_name="here", storage=written).set_user_attr("note", "seen")
    for storage in (opened, copied, written):
        storage.engine.dispose()
    assert sorted(tmp_path.iterdir()) == before
    assert optuna.load_study(study_name="here", storage=url).user_attrs == {"note": "seen"}


def test_a_read_of_a_store_from_an_older_optuna_names_the_upgrade_command(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    optuna.create_study(storage=url)
    with sqlite3.connect(tmp_path / "old.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'v3.0.0.a'")
    with pytest.raises(StorageError, match=re.escape(f"optuna storage upgrade --storage {url}")):
        open_existing_storage(url)


def test_a_file_that_is_no_database_is_one_line(tmp_path):
    (tmp_path / "notes.db").write_text("not a database\n" * 100)
    with pytest.raises(StorageError) as raised:
        open_existing_storage(f"sqlite:///{tmp_path / 'notes.db'}")
    assert str(raised.value).endswith("file is not a database")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]
