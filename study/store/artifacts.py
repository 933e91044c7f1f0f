"""The artifact store that holds trial checkpoints and learning-curve PNGs: Optuna's file-system
store, with writes that never leave a partial file behind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from optuna.artifacts import FileSystemArtifactStore

from catdog.atomic import atomic_write
from study.optuna_private import artifact_path
from study.store.storage import StorageError


class AtomicFileSystemArtifactStore(FileSystemArtifactStore):
    """Optuna's file-system artifact store, but a write never leaves a partial file behind."""

    def __init__(self, base_path: str | Path) -> None:
        Path(base_path).mkdir(parents=True, exist_ok=True)
        super().__init__(base_path)

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        destination = artifact_path(self, artifact_id)
        with atomic_write(destination) as temporary, open(temporary, "wb") as handle:
            while block := content_body.read(1 << 20):
                handle.write(block)


def open_artifact_store(artifact_dir: str | Path) -> AtomicFileSystemArtifactStore:
    """The store in `artifact_dir` (created), or a one-line StorageError."""
    try:
        return AtomicFileSystemArtifactStore(os.fspath(artifact_dir))
    except OSError as error:
        raise StorageError(f"cannot use artifact folder {artifact_dir}: {error}") from None


def check_artifact_dir(artifact_dir: str | Path) -> None:
    """StorageError unless `artifact_dir` is a folder that can be written, or can be created
    where it is asked for. Nothing is created: a run checks this before it changes anything."""
    folder = Path(artifact_dir)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise StorageError(f"cannot use artifact folder {folder}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise StorageError(f"cannot use artifact folder {folder}: {existing} is not writable")
