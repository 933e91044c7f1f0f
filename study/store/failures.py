"""What a study database can fail with while a run uses it, each as one error a user can act on.

- StorageFull: the database's disk is full (SQLite's "database or disk is full", PostgreSQL's
  disk_full). The run stops; waiting would not help.
- StorageUnreachable: the database stopped answering (a PostgreSQL restart, a failover, a
  network cut) for longer than the run waits for it (see retry.py).

Optuna's study.optimize replaces an error raised while it tells a trial with its own
(AssertionError "Should not reach.", UnboundLocalError 'updated_state'), keeping ours only as
the exception's context: `storage_failure` finds it there.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy.exc

from catdog.errors import CatdogError
from study.store.disk import AGAIN, describe_bytes, disk_of, free_bytes

# Room a SQLite study database needs to go on: its write-ahead log grows to about 4 MB (1000
# pages of 4 KiB, SQLite's automatic checkpoint) before it is copied into the file, which grows
# by each trial's rows; twice that leaves a margin.
DATABASE_ROOM_BYTES = 16 * 1024 * 1024
POSTGRES_DISK_FULL = "53100"  # SQLSTATE disk_full


class StorageError(CatdogError, RuntimeError):
    """The study store cannot be opened or used; the message says what to do."""


class StorageFull(StorageError):
    """The study database's disk is full: nothing more can be stored."""


class StorageUnreachable(StorageError):
    """The study database did not answer for as long as the run waits for it."""


def storage_failure(error: BaseException) -> StorageError | None:
    """The StorageError `error` is, or hides in its context (see the module docstring)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, StorageError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def database_error(error: BaseException) -> sqlalchemy.exc.DBAPIError | None:
    """The SQLAlchemy database error behind `error` (Optuna wraps it in StorageInternalError)."""
    current: BaseException | None = error
    for _ in range(8):  # a few links: Optuna's wrapper, a rollback that failed too
        if current is None:
            return None
        if isinstance(current, sqlalchemy.exc.DBAPIError):
            return current
        current = current.__cause__ or current.__context__
    return None


def is_full(error: sqlalchemy.exc.DBAPIError) -> bool:
    """True when the database says its disk is full."""
    if isinstance(error.orig, sqlite3.Error):
        return getattr(error.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    return getattr(error.orig, "sqlstate", None) == POSTGRES_DISK_FULL


def is_unreachable(error: sqlalchemy.exc.DBAPIError, backend: str) -> bool:
    """True when the database server did not answer or dropped the connection: worth waiting
    for. A SQLite file never is (a locked one has been waited for already)."""
    if error.connection_invalidated:
        return True
    transient = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)
    return backend == "postgresql" and isinstance(error, transient)


def reason_of(error: sqlalchemy.exc.DBAPIError) -> str:
    """The driver's reason in a few words: 'Connection refused', 'database or disk is full'."""
    first = (str(error.orig).strip().splitlines() or [type(error.orig).__name__])[0]
    why = first.rsplit("failed: ", 1)[-1]  # psycopg: "connection to server at ... failed: WHY"
    return " ".join(why.split())


def full_database(
    where: str, database: str | None, error: sqlalchemy.exc.DBAPIError
) -> StorageFull:
    """The StorageFull for the database at `where`: a SQLite file `database`, or a server's."""
    if database is None:
        return StorageFull(
            f"the database server of {where} has no room left ({reason_of(error)}): free space "
            f"on its disk, then {AGAIN}"
        )
    return no_room_for_database(database)


def check_database_room(database: str | Path) -> None:
    """StorageFull unless the disk of the SQLite file `database` has room to go on."""
    if free_bytes(database) < DATABASE_ROOM_BYTES:
        raise no_room_for_database(database)


def no_room_for_database(database: str | Path) -> StorageFull:
    """The StorageFull that names the SQLite file's disk, what is free and what is needed."""
    return StorageFull(
        f"no room for the study database {database} (the disk at {disk_of(database)}): "
        f"{describe_bytes(free_bytes(database))} free, {describe_bytes(DATABASE_ROOM_BYTES)} "
        f"needed; free space there, then {AGAIN}"
    )
