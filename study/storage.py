"""Open the study store (Optuna's RDB storage on SQLite or PostgreSQL) and the artifact store.

SQLite is tuned for several worker processes on one machine: WAL journal (readers never block
the writer) and a long busy timeout (a writer waits for the lock instead of failing with
"database is locked"). Heartbeats let a worker notice a trial whose worker died; such a trial is
marked FAIL and a copy is queued to run again (RetryHeartbeatStaleTrialCallback).
"""

from __future__ import annotations

import os
import sqlite3
import warnings
from pathlib import Path
from typing import BinaryIO

import optuna
import sqlalchemy.exc
from optuna.artifacts import FileSystemArtifactStore
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from sqlalchemy.engine import make_url

from catdog.atomic import atomic_write

DEFAULT_STORAGE = "sqlite:///storage/catdog.db"
DEFAULT_ARTIFACT_DIR = "storage/artifacts"
SQLITE_BUSY_TIMEOUT_S = 120  # how long a writer waits for another process's write lock
HEARTBEAT_INTERVAL_S = 30  # a running trial's worker writes a heartbeat this often
GRACE_PERIOD_S = 120  # a trial without a heartbeat for this long is declared dead
MAX_RETRIES = 2  # a dead trial is re-queued at most this many times


class StorageError(RuntimeError):
    """The study store cannot be opened or used; the message says what to do."""


def open_storage(
    url: str,
    *,
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S,
    grace_period: int = GRACE_PERIOD_S,
) -> RDBStorage:
    """RDBStorage for `url` with heartbeats and stale-trial retries, or a one-line StorageError."""
    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise StorageError(
            f"cannot parse storage URL {url!r}: expected e.g. sqlite:///storage/catdog.db or "
            "postgresql+psycopg://user:password@host/dbname"
        ) from None
    if parsed.drivername == "postgresql":
        # SQLAlchemy's bare postgresql:// means psycopg2; this project installs psycopg 3.
        parsed = parsed.set(drivername="postgresql+psycopg")
        url = parsed.render_as_string(hide_password=False)
    engine_kwargs: dict = {}
    if parsed.get_backend_name() == "sqlite":
        engine_kwargs = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
        _prepare_sqlite(parsed.database)
    elif parsed.get_backend_name() == "postgresql":
        engine_kwargs = {"pool_pre_ping": True}  # survive server restarts and idle timeouts
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                    max_retry=MAX_RETRIES
                ),
            )
    except ModuleNotFoundError as error:
        raise StorageError(
            f"the database driver for {parsed.drivername} is not installed ({error.name}); "
            "for PostgreSQL run: pip install 'catdog-study[postgres]'"
        ) from None
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise StorageError(f"cannot open storage {_redacted(url)}: {reason}") from None
    except RuntimeError as error:
        # Optuna's schema-version check; its message names the fix (optuna storage upgrade).
        raise StorageError(" ".join(str(error).split())) from None


def _prepare_sqlite(database: str | None) -> None:
    """Create the SQLite file's folder and switch the file to WAL mode (a persistent setting)."""
    if not database or database == ":memory:":
        return
    path = Path(database)
    if path.parent and not path.parent.exists():
        try:
            path.parent.mkdir(parents=True)
        except OSError as error:
            raise StorageError(f"cannot create folder {path.parent} for {path}: {error}") from None
    try:
        with sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as error:
        raise StorageError(f"cannot open SQLite file {path}: {error}") from None


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


class AtomicFileSystemArtifactStore(FileSystemArtifactStore):
    """Optuna's file-system artifact store, but a write never leaves a partial file behind."""

    def __init__(self, base_path: str | Path) -> None:
        Path(base_path).mkdir(parents=True, exist_ok=True)
        super().__init__(base_path)

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        destination = self._get_filepath(artifact_id)
        with atomic_write(destination) as temporary, open(temporary, "wb") as handle:
            while block := content_body.read(1 << 20):
                handle.write(block)


def open_artifact_store(artifact_dir: str | Path) -> AtomicFileSystemArtifactStore:
    try:
        return AtomicFileSystemArtifactStore(os.fspath(artifact_dir))
    except OSError as error:
        raise StorageError(f"cannot use artifact folder {artifact_dir}: {error}") from None
