"""Open the study store (Optuna's RDB storage on SQLite or PostgreSQL) and the artifact store.

SQLite is set up for several worker processes on one machine: a WAL journal, a long busy timeout
(a writer waits for the lock instead of failing with "database is locked"), and transactions
that take the write lock when they begin. Without the last, two workers could both read a
queued trial as WAITING and both run it: Optuna hands a queued trial to one worker with
SELECT ... FOR UPDATE, which SQLite does not have.

Heartbeats let a worker notice a trial whose worker died; such a trial is marked FAIL and a copy
is queued to run again (RetryHeartbeatStaleTrialCallback). The artifact store is in artifacts.py.

Only `optimize` sets a store up (open_storage: folder, tables, WAL, lock file); its calls wait
for a database that stops answering for a while (retry.py). The commands that do not run trials
open one with existing.py's open_existing_storage, which creates nothing.
"""

from __future__ import annotations

import contextlib
import sqlite3
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import sqlalchemy
import sqlalchemy.exc
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url

from study.settings import DEFAULT_STORAGE_TIMEOUT_S, GRACE_PERIOD_S, HEARTBEAT_INTERVAL_S
from study.store.failures import StorageError, check_database_room
from study.store.locks import storage_lock
from study.store.retry import RetryingRDBStorage, say_on_stderr

SQLITE_BUSY_TIMEOUT_S = 120  # how long a writer waits for another process's write lock
MAX_RETRIES = 2  # a dead trial is re-queued at most this many times


SQLITE_FORMS = "sqlite:///relative/path.db or sqlite:////absolute/path.db"


def parse_storage_url(url: str) -> URL:
    """The SQLAlchemy URL for --storage; bare postgresql:// gets this project's psycopg 3.

    Refuses, with one line that shows the right form, what SQLAlchemy would misread or what
    could never hold a study: an unknown database kind, a SQLite URL with a host part
    (sqlite://tmp/x.db is read as the file x.db in the current folder), and a SQLite URL
    without a file (an in-memory database, gone when the command ends).
    """
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
    try:
        parsed.get_dialect()  # SQLAlchemy's own module for the kind; no database driver yet
    except sqlalchemy.exc.NoSuchModuleError:
        raise StorageError(
            f"cannot open storage {redacted_url(url)}: unknown kind of database "
            f"{parsed.drivername!r}; use {SQLITE_FORMS}, or postgresql://user:password@host/dbname"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_url(url, parsed)
    return parsed


def _check_sqlite_url(url: str, parsed: URL) -> None:
    if parsed.host and not (parsed.username or parsed.password or parsed.port):
        path = f"{parsed.host}/{parsed.database}" if parsed.database else parsed.host
        misread = f"the file {parsed.database} in this folder" if parsed.database else "memory"
        raise StorageError(
            f"storage URL {url!r} has a host part ({parsed.host!r}), which SQLite URLs do not "
            f"take (SQLAlchemy would read it as {misread}): write sqlite:///{path} for a path "
            f"relative to this folder, or sqlite:////{path} for an absolute one"
        )
    if parsed.host or parsed.username or parsed.password or parsed.port:
        raise StorageError(
            f"storage URL {redacted_url(url)} has a user, host or port, which SQLite URLs do "
            f"not take: write {SQLITE_FORMS}"
        )
    if parsed.database in (None, "", ":memory:"):
        raise StorageError(
            f"storage URL {url!r} names no database file (SQLite would keep the study in "
            f"memory and lose it when the command ends): write {SQLITE_FORMS}"
        )


def open_storage(
    url: str,
    *,
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S,
    grace_period: int = GRACE_PERIOD_S,
    timeout_s: float = DEFAULT_STORAGE_TIMEOUT_S,
    say: Callable[[str], None] | None = None,
) -> RDBStorage:
    """RDBStorage for `url` with heartbeats and stale-trial retries, or a one-line StorageError.

    Its calls wait up to `timeout_s` seconds for a database that stops answering, `say`ing so
    in one line (see retry.py). StorageFull when a SQLite file's disk has no room to go on.
    """
    parsed = parse_storage_url(url)
    engine_kwargs: dict = {}
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite:
        # isolation_level None: the driver issues no BEGIN of its own; begin_immediate does.
        connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_S, "isolation_level": None}
        engine_kwargs = {"connect_args": connect_args}
        _create_folder_of(parsed.database, say or say_on_stderr)
        check_database_room(parsed.database)
    elif parsed.get_backend_name() == "postgresql":
        engine_kwargs = {"pool_pre_ping": True}  # survive server restarts and idle timeouts
    # The lock: workers starting together on a fresh database would race to create its tables.
    with storage_errors(url, parsed), storage_lock(parsed), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if sqlite:
            _enable_wal(parsed.database)
        storage = RetryingRDBStorage(
            parsed.render_as_string(hide_password=False),
            timeout_s=timeout_s,
            where=redacted_url(url),
            database=parsed.database if sqlite else None,
            say=say,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES),
        )
        if sqlite:
            begin_immediate(storage.engine)
        return storage


@contextlib.contextmanager
def storage_errors(url: str, parsed: URL) -> Iterator[None]:
    """Turn what opening a storage can raise into one-line StorageErrors."""
    try:
        yield
    except StorageError:
        raise
    except ModuleNotFoundError as error:
        raise StorageError(
            f"the database driver for {parsed.drivername} is not installed ({error.name}); "
            "for PostgreSQL run: pip install 'catdog-study[postgres]'"
        ) from None
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise StorageError(f"cannot open storage {redacted_url(url)}: {reason}") from None
    except RuntimeError as error:
        # Optuna's schema-version check; its message names the fix, here with the real URL.
        message = " ".join(str(error).split()).replace("$STORAGE_URL", redacted_url(url))
        raise StorageError(message) from None


def _create_folder_of(database: str | None, say: Callable[[str], None]) -> None:
    """Create the SQLite file's folder, saying so: a mistyped --storage would go unnoticed."""
    if not database or database == ":memory:":
        return
    folder = Path(database).parent
    if folder.is_dir():
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StorageError(f"cannot create folder {folder} for {database}: {error}") from None
    say(f"created folder {folder} for the study database {Path(database).name}")


def _enable_wal(database: str | None) -> None:
    """WAL journal: readers never block the writer. A persistent setting of the file."""
    if not database or database == ":memory:":
        return
    try:
        with sqlite3.connect(database, timeout=SQLITE_BUSY_TIMEOUT_S) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as error:
        raise StorageError(f"cannot open SQLite file {database}: {error}") from None


def begin_immediate(engine: Engine) -> None:
    """Start every transaction of `engine` with BEGIN IMMEDIATE: it takes SQLite's write lock
    (waiting up to the busy timeout) before it reads anything, so a read-then-write such as
    Optuna's "WAITING -> RUNNING" can never act on a row another process has just changed.

    Python's sqlite3 would otherwise begin a transaction only at the first write, after the
    reads it was based on. (What SQLAlchemy's documentation prescribes for pysqlite.)
    """

    @event.listens_for(engine, "begin")
    def begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def redacted_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url
