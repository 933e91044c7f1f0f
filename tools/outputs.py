"""What a GPU tool hands back: a device run returns at most MAX_FILES files from $OUT.

So each tool writes its JSON (and a few named files) to OUT, and everything else (logs, each
step's JSON) to a side folder that is packed into one OUT/NAME-details.tar.gz after every step:
a run stopped half-way still returns what it had, in few files.
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

MAX_FILES = 8  # what one device run returns from $OUT


def details_folder(work: Path, *, fresh: bool = True) -> Path:
    """The side folder for a run's logs and step JSON, inside `work`; emptied when fresh."""
    folder = work / "details"
    if fresh:
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def pack(folder: Path, archive: Path) -> None:
    """`folder`'s files as `archive` (.tar.gz), replaced whole: written beside, then renamed."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".partial")
    with tarfile.open(partial, "w:gz") as tar:
        tar.add(folder, arcname=archive.name.removesuffix(".tar.gz"))
    partial.replace(archive)
