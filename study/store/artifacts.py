"""The artifact store that holds trial checkpoints and learning-curve PNGs: Optuna's file-system
store, with writes that never leave a partial file behind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from optuna.artifacts import FileSystemArtifactStore

from catdog.atomic import atomic_write
from study.optuna_private import artifact_path
from study.store.disk import disk_full, is_disk_full, require_room, writable_folder_problem
from study.store.failures import StorageError


class AtomicFileSystemArtifactStore(FileSystemArtifactStore):
    """Optuna's file-system artifact store, but a write never leaves a partial file behind.

    `create=False` (the commands that only read) leaves the folder as it is, absent or not.
    """

    def __init__(self, base_path: str | Path, *, create: bool = True) -> None:
        self.folder = Path(base_path)
        if create:
            self.folder.mkdir(parents=True, exist_ok=True)
        super().__init__(base_path)

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        """Write the artifact; DiskFull (an OSError) when its disk has no room for it."""
        destination = artifact_path(self, artifact_id)
        size = _size_of(content_body)
        require_room("an artifact of a trial", self.folder, size)
        try:
            with atomic_write(destination) as temporary, open(temporary, "wb") as handle:
                while block := content_body.read(1 << 20):
                    handle.write(block)
        except OSError as error:
            if not is_disk_full(error):
                raise
            raise disk_full("an artifact of a trial", self.folder, size) from None


def _size_of(content: BinaryIO) -> int:
    """Bytes left to read in `content` (0 where it cannot tell: a stream)."""
    try:
        return os.fstat(content.fileno()).st_size - content.tell()
    except (OSError, AttributeError, ValueError):
        return 0


def open_artifact_store(
    artifact_dir: str | Path, *, create: bool = True
) -> AtomicFileSystemArtifactStore:
    """The store in `artifact_dir`, or a one-line StorageError.

    The folder is created, unless `create` is False: then nothing is, and reading an artifact
    from a folder that is not there finds none (Optuna's ArtifactNotFound).
    """
    if not create and os.path.exists(artifact_dir) and not os.path.isdir(artifact_dir):
        raise StorageError(f"cannot use artifact folder {artifact_dir}: it is not a folder")
    try:
        return AtomicFileSystemArtifactStore(os.fspath(artifact_dir), create=create)
    except OSError as error:
        raise StorageError(f"cannot use artifact folder {artifact_dir}: {error}") from None


def check_artifact_dir(artifact_dir: str | Path) -> None:
    """StorageError unless `artifact_dir` is a folder that can be written, or can be created
    where it is asked for. Nothing is created: a run checks this before it changes anything."""
    if problem := writable_folder_problem(artifact_dir):
        raise StorageError(f"cannot use artifact folder {artifact_dir}: {problem}")
