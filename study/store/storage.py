"""Open the study store (Optuna's RDB storage on SQLite or PostgreSQL) and the artifact store.

SQLite is set up for several worker processes on one machine: a WAL journal, a long busy timeout
(a writer waits for the lock instead of failing with "database is locked"), and transactions
that take the write lock when they begin. Without the last, two workers could both read a
queued trial as WAITING and both run it: Optuna hands a queued trial to one worker with
SELECT ... FOR UPDATE, which SQLite does not have.

Heartbeats let a worker notice a trial whose worker died; such a trial is marked FAIL and a copy
is queued to run again (RetryHeartbeatStaleTrialCallback). The artifact store is in artifacts.py.
"""

from __future__ import annotations

import sqlite3
import warnings
from pathlib import Path

import optuna
import sqlalchemy.exc
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url

from catdog.errors import CatdogError
from study.settings import GRACE_PERIOD_S, HEARTBEAT_INTERVAL_S
from study.store.locks import storage_lock

SQLITE_BUSY_TIMEOUT_S = 120  # how long a writer waits for another process's write lock
MAX_RETRIES = 2  # a dead trial is re-queued at most this many times


class StorageError(CatdogError, RuntimeError):
    """The study store cannot be opened or used; the message says what to do."""


def parse_storage_url(url: str) -> URL:
    """The SQLAlchemy URL for --storage; bare postgresql:// gets this project's psycopg 3."""
    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise StorageError(
            f"cannot parse storage URL {url!r}: expected e.g. sqlite:///storage/catdog.db or "
            "postgresql://user:password@host/dbname"
        ) from None
    if parsed.drivername == "postgresql":
        # SQLAlchemy's bare postgresql:// means psycopg2; this project installs psycopg 3.
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def open_storage(
    url: str,
    *,
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S,
    grace_period: int = GRACE_PERIOD_S,
) -> RDBStorage:
    """RDBStorage for `url` with heartbeats and stale-trial retries, or a one-line StorageError."""
    parsed = parse_storage_url(url)
    engine_kwargs: dict = {}
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite:
        # isolation_level None: the driver issues no BEGIN of its own; _begin_immediate does.
        connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_S, "isolation_level": None}
        engine_kwargs = {"connect_args": connect_args}
        _create_folder_of(parsed.database)
    elif parsed.get_backend_name() == "postgresql":
        engine_kwargs = {"pool_pre_ping": True}  # survive server restarts and idle timeouts
    try:
        # Workers starting together on a fresh database would race to create its tables.
        with storage_lock(parsed), warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if sqlite:
                _enable_wal(parsed.database)
            storage = RDBStorage(
                parsed.render_as_string(hide_password=False),
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                    max_retry=MAX_RETRIES
                ),
            )
            if sqlite:
                _begin_immediate(storage.engine)
            return storage
    except ModuleNotFoundError as error:
        raise StorageError(
            f"the database driver for {parsed.drivername} is not installed ({error.name}); "
            "for PostgreSQL run: pip install 'catdog-study[postgres]'"
        ) from None
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise StorageError(f"cannot open storage {_redacted(url)}: {reason}") from None
    except RuntimeError as error:
        # Optuna's schema-version check; its message names the fix, here with the real URL.
        message = " ".join(str(error).split()).replace("$STORAGE_URL", _redacted(url))
        raise StorageError(message) from None


def _create_folder_of(database: str | None) -> None:
    if not database or database == ":memory:":
        return
    folder = Path(database).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StorageError(f"cannot create folder {folder} for {database}: {error}") from None


def _enable_wal(database: str | None) -> None:
    """WAL journal: readers never block the writer. A persistent setting of the file."""
    if not database or database == ":memory:":
        return
    try:
        with sqlite3.connect(database, timeout=SQLITE_BUSY_TIMEOUT_S) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as error:
        raise StorageError(f"cannot open SQLite file {database}: {error}") from None


def _begin_immediate(engine: Engine) -> None:
    """Start every transaction of `engine` with BEGIN IMMEDIATE: it takes SQLite's write lock
    (waiting up to the busy timeout) before it reads anything, so a read-then-write such as
    Optuna's "WAITING -> RUNNING" can never act on a row another process has just changed.

    Python's sqlite3 would otherwise begin a transaction only at the first write, after the
    reads it was based on. (What SQLAlchemy's documentation prescribes for pysqlite.)
    """

    @event.listens_for(engine, "begin")
    def begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url
