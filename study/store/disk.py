"""Room on the disks a study writes to: how much is free, where the disk is, and the one error a
full one becomes (DiskFull), with what it would take to go on.

A full disk reaches Python in several shapes: OSError(ENOSPC) from a plain write, a RuntimeError
"unexpected pos" from torch.save (its zip writer hides the OSError), SQLite's "database or disk
is full". Each is turned into a DiskFull that names the folder, the disk it is on and the room
needed, so that the run can fail that one trial, or stop with one line.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from catdog.errors import CatdogError

AGAIN = "run the same command again: every finished trial is kept"


class DiskFull(CatdogError, OSError):
    """A disk too full for a write the study needs; the message names the disk and the room.

    An OSError with errno ENOSPC too, so that whatever handles a full disk handles this one.
    needed: bytes the write needs there; folder: where it writes.
    """

    def __init__(self, message: str, *, folder: Path, needed: int) -> None:
        super().__init__(errno.ENOSPC, message)
        self.message, self.folder, self.needed = message, Path(folder), needed

    def __str__(self) -> str:
        return self.message


def is_disk_full(error: BaseException) -> bool:
    """True for an OSError that says a disk or a quota is full."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


def existing_folder(path: str | Path) -> Path:
    """`path`, or the nearest folder above it that exists (where it would be created)."""
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def writable_folder_problem(folder: str | Path) -> str | None:
    """Why files cannot be created in `folder` (or where it would be created), or None."""
    existing = existing_folder(folder)
    if not existing.is_dir():
        return f"{existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):  # EROFS on read-only media, root or not
        return f"{existing} is not writable"
    return None


def free_bytes(path: str | Path) -> int:
    """Bytes free on the disk holding `path` (or the folder it would be created in)."""
    return shutil.disk_usage(existing_folder(path)).free


def disk_of(path: str | Path) -> str:
    """The mount point of the disk holding `path`, e.g. '/' or '/mnt/usb'."""
    folder = existing_folder(path).resolve()
    while not os.path.ismount(folder) and folder != folder.parent:
        folder = folder.parent
    return str(folder)


def describe_bytes(count: float) -> str:
    """A size the way `df -h` shows one, in powers of 1024: '0 B', '640 kB', '1.9 GB'."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(count) < 1024 or unit == "GB":
            break
        count /= 1024
    return f"{count:.0f} {unit}" if unit in ("B", "kB") or count >= 100 else f"{count:.1f} {unit}"


def disk_full(what: str, folder: str | Path, needed: int, then: str = "") -> DiskFull:
    """The DiskFull for `what` (e.g. "trial 3's checkpoint after epoch 2") in `folder`: its
    disk, what is free there and the `needed` bytes; `then`: what to do, if anything."""
    free = free_bytes(folder)
    then = f"; {then}" if then else ""
    return DiskFull(
        f"no room for {what} in {folder} (the disk at {disk_of(folder)}): "
        f"{describe_bytes(free)} free, {describe_bytes(needed)} needed{then}",
        folder=Path(folder),
        needed=needed,
    )


def require_room(what: str, folder: str | Path, needed: int, then: str = "") -> None:
    """DiskFull (see disk_full) unless `folder`'s disk has `needed` bytes free."""
    if free_bytes(folder) < needed:
        raise disk_full(what, folder, needed, then)
