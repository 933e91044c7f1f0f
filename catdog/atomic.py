"""Write files so that a crash, a kill or a full disk never leaves a half-written one in place."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# mkstemp creates files readable by their owner only; a written file should get the permissions
# a plain open() would give it. The umask can only be read by setting it, so read it once, here.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_write(destination: Path) -> Iterator[Path]:
    """Yield a temporary path beside `destination`; on success it replaces `destination`.

    The temporary file lives in the same folder so the final rename is atomic on POSIX file
    systems; it is fsynced first, so after a power cut the file is either the old or the new one.
    On any error the temporary file is removed and `destination` is left as it was.
    """
    destination = Path(destination)
    handle, name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent
    )
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as written:
            written.flush()
            os.fsync(written.fileno())
        os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(destination.parent)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
