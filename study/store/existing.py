"""Open an existing study store as it is, creating and changing nothing: for the commands that
only read a study (dashboard, export, report), and for `optimize`'s checks before it decodes
any image (is the database reachable, its driver installed, the study continuable?).

SQLite files on read-only media (a :ro container volume, a read-only NFS export, a DVD) are
read too: with mode=ro, or immutable=1 where SQLite cannot even create the -shm file that it
reads a WAL database with.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import urllib.parse
import warnings
from pathlib import Path

import sqlalchemy
from optuna.storages import RDBStorage
from sqlalchemy.engine import URL

from study.store.disk import existing_folder, writable_folder_problem
from study.store.failures import StorageError, check_database_room
from study.store.storage import (
    SQLITE_BUSY_TIMEOUT_S,
    begin_immediate,
    parse_storage_url,
    redacted_url,
    storage_errors,
)

# Tables every Optuna RDB storage has; a database without them holds no study.
OPTUNA_TABLES = frozenset({"studies", "trials", "version_info"})


class NoStudyDatabase(StorageError):
    """There is no study database where a command that only reads looks for one."""


def open_existing_storage(url: str, *, writes: bool = False) -> RDBStorage:
    """The study store at `url` as it is, for the commands that run no trials (dashboard,
    export, report): it creates no file, folder, table, journal or lock file. A one-line
    NoStudyDatabase "no study database at PATH" when there is no file there or the file (or the
    PostgreSQL database) holds no Optuna tables.

    SQLite opens the file with mode=rw, which opens an existing file and never creates one
    (mode=ro would too, but a read-only connection to a WAL database cannot remove the -wal and
    -shm files it needs, so they would stay behind), or read-only on read-only media (see
    _sqlite_mode). Nothing here writes: Optuna's table creation is skipped, the journal mode is
    left as it is, and no set-up lock is taken. `writes=True` (the dashboard, where notes and
    artifacts can change while workers run) makes each transaction take SQLite's write lock
    when it begins, as open_storage does, where the file can be written.
    """
    parsed = parse_storage_url(url)
    where = redacted_url(url)
    engine_kwargs: dict = {}
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite:
        path = Path(parsed.database)
        where = str(path)
        if not path.exists():
            raise NoStudyDatabase(
                f"no study database at {path}: run `catdog-study optimize` first, or give "
                "--storage the one to read"
            )
        if not path.is_file():
            raise StorageError(f"no study database at {path}: it is not a file")
        if path.stat().st_size == 0:
            raise NoStudyDatabase(f"no study database at {path}: the file is empty")
        mode = _sqlite_mode(path)
        if writes and mode != "mode=rw":
            warnings.warn(f"{path} can only be read here: changes are not saved", stacklevel=2)
            writes = False
        engine_kwargs = {"creator": _sqlite_opener(path, mode, writes=writes)}
    elif parsed.get_backend_name() == "postgresql":
        engine_kwargs = {"pool_pre_ping": True}
    with storage_errors(url, parsed):
        if not _table_names(parsed, engine_kwargs) >= OPTUNA_TABLES:
            raise NoStudyDatabase(f"no study database at {where}: it holds no Optuna tables")
        storage = RDBStorage(
            parsed.render_as_string(hide_password=False),
            engine_kwargs=engine_kwargs,
            skip_table_creation=True,
        )
        if sqlite and writes:
            begin_immediate(storage.engine)
        return storage


def probe_storage(url: str) -> RDBStorage | None:
    """The study store at `url` opened as open_existing_storage does (creating nothing), or None
    where there is none yet: a one-line StorageError when its driver is missing, it cannot be
    reached, or a SQLite file could not be created or written where it is asked for, or its
    disk has no room to go on (StorageFull)."""
    parsed = parse_storage_url(url)
    if parsed.get_backend_name() == "sqlite":
        folder = existing_folder(Path(parsed.database).parent)
        if problem := writable_folder_problem(folder):
            raise StorageError(f"cannot write the study database {parsed.database}: {problem}")
        database = Path(parsed.database)
        if database.is_file() and not os.access(database, os.W_OK):
            raise StorageError(f"cannot write the study database {database}: it is read-only")
        check_database_room(database)
    try:
        return open_existing_storage(url)
    except NoStudyDatabase:
        return None


def _sqlite_mode(path: Path) -> str:
    """How to open the SQLite file `path`: mode=rw where it and its folder can be written; on
    read-only media (a :ro container volume, a read-only NFS export, a DVD) mode=ro, or
    immutable=1 where SQLite cannot even create the -shm file it reads a WAL database with."""
    if os.access(path, os.W_OK) and os.access(path.parent, os.W_OK):
        return "mode=rw"
    try:
        with contextlib.closing(sqlite3.connect(_sqlite_uri(path, "mode=ro"), uri=True)) as db:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return "mode=ro"
    except sqlite3.Error:
        pass
    log = Path(f"{path}-wal")
    if log.is_file() and log.stat().st_size > 0:
        warnings.warn(
            f"{path} is on read-only media beside {log.name}, which SQLite cannot read from "
            "there: the changes of its last run that wait in it are not shown (copy both "
            "files to a writable folder to see them)",
            stacklevel=3,
        )
    return "mode=ro&immutable=1"


def _sqlite_uri(path: Path, mode: str) -> str:
    return f"file:{urllib.parse.quote(str(path.resolve()))}?{mode}"


def _sqlite_opener(path: Path, mode: str, *, writes: bool) -> functools.partial:
    """Opens the existing SQLite file `path` in `mode`, never creating it (a partial of
    sqlite3.connect: it can be pickled with the storage, unlike a closure)."""
    # isolation_level None: the driver issues no BEGIN of its own; begin_immediate does.
    driver_begins = {"isolation_level": None} if writes else {}
    return functools.partial(
        sqlite3.connect,
        _sqlite_uri(path, mode),
        uri=True,
        timeout=SQLITE_BUSY_TIMEOUT_S,
        check_same_thread=False,  # what SQLAlchemy sets for its pool of file connections
        **driver_begins,
    )


def _table_names(parsed: URL, engine_kwargs: dict) -> set[str]:
    """The tables of the database at `parsed`, read without creating or changing anything."""
    engine = sqlalchemy.create_engine(parsed, poolclass=sqlalchemy.pool.NullPool, **engine_kwargs)
    try:
        return set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()
