"""A lock shared by every worker of a storage, for the few steps Optuna does not serialise.

Creating the schema of a fresh database and queueing the report's runs are check-then-act
steps: workers started at the same moment would each create tables or each queue the same four
runs. SQLite files are shared by processes on one machine, so a lock file beside the database
does; PostgreSQL serves several machines, so a session-level advisory lock in the server does.
Other storages get no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import sqlalchemy
from sqlalchemy.engine import URL


@contextlib.contextmanager
def storage_lock(url: URL, name: str = "setup") -> Iterator[None]:
    """Hold an exclusive lock named `name` on the storage at `url` for the with-block."""
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        lock_path = Path(f"{url.database}.{_file_name(name)}.lock")
        with open(lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # blocks until the holder leaves its block
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    elif url.get_backend_name() == "postgresql":
        key = int.from_bytes(
            hashlib.sha256(f"catdog/{name}".encode()).digest()[:8], "big", signed=True
        )
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.connect() as connection:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
                try:
                    yield
                finally:
                    connection.execute(
                        sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key}
                    )
        finally:
            engine.dispose()
    else:
        yield


def _file_name(name: str) -> str:
    """`name` as one file name: 'study-catdog' as it is, 'study-a/b' as 'study-a%2Fb'; a name
    too long for a file system (255 bytes) shortened and made unique by its SHA-256."""
    quoted = quote(name, safe=" -_.,+=@()", errors="surrogateescape")
    if len(quoted) > 200:
        digest = hashlib.sha256(name.encode(errors="surrogateescape")).hexdigest()
        quoted = f"{quoted[:100]}-{digest[:16]}"
    return quoted
