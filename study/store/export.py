"""Find a trial's checkpoint artifact, verify it, and write it where the user asked."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import optuna
from optuna.artifacts import download_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import FrozenTrial, TrialState

from catdog.atomic import atomic_write
from catdog.errors import CatdogError
from catdog.modelfile import (
    ModelFile,
    checksum_path,
    load_model_file,
    sha256_of,
    write_checksum,
)
from study.attrs import CHECKPOINT_ATTR, CHECKPOINT_SHA_ATTR
from study.store.disk import writable_folder_problem
from study.store.studies import find_trial


class ExportError(CatdogError, ValueError):
    """No trial or no usable checkpoint to export; the message says which and why."""


def choose_trial(study: optuna.Study, number: int | None) -> FrozenTrial:
    """Trial `number`, or the best finished trial when number is None."""
    if number is None:
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not finished:
            raise ExportError(f"study {study.study_name!r} has no finished trial yet")
        return study.best_trial
    trial = find_trial(study, number)
    if trial is None:
        raise ExportError(f"study {study.study_name!r} has no trial {number}")
    return trial


def export_checkpoint(
    study: optuna.Study,
    artifact_store: optuna.artifacts.FileSystemArtifactStore,
    out: Path,
    trial_number: int | None = None,
    *,
    overwrite: bool = False,
) -> tuple[FrozenTrial, ModelFile]:
    """Write the chosen trial's model file to `out` after checking its SHA-256 and contents.

    An existing `out` is refused unless `overwrite`; ExportError too when `out` cannot be
    written (read-only media, a full disk), leaving no half of it: the file without its .sha256.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise ExportError(f"{out} already exists: give --force to replace it")
    if (problem := writable_folder_problem(out.parent)) is not None:  # before any reading
        raise ExportError(f"cannot write {out}: {problem}; give --out a folder you can write")
    trial = choose_trial(study, trial_number)
    artifact_id = trial.user_attrs.get(CHECKPOINT_ATTR)
    if artifact_id is None:
        raise ExportError(
            f"trial {trial.number} ({trial.state.name.lower()}) has no checkpoint: only "
            "finished trials store one"
        )
    with tempfile.TemporaryDirectory() as folder:
        downloaded = Path(folder) / "model.safetensors"
        try:
            download_artifact(
                artifact_store=artifact_store, file_path=str(downloaded), artifact_id=artifact_id
            )
        except ArtifactNotFound:
            folder = getattr(artifact_store, "folder", None)
            if folder is not None and not Path(folder).is_dir():
                raise ExportError(
                    f"trial {trial.number}'s checkpoint {artifact_id} cannot be read: there is "
                    f"no artifact folder {folder}; check --artifact-dir"
                ) from None
            raise ExportError(
                f"trial {trial.number}'s checkpoint {artifact_id} is missing from the artifact "
                "store: check --artifact-dir"
            ) from None
        model_file = load_model_file(
            downloaded, expected_sha256=trial.user_attrs.get(CHECKPOINT_SHA_ATTR)
        )
        _write(downloaded, out)
    return trial, model_file


def _write(model: Path, out: Path) -> None:
    """Copy `model` to `out` and its SHA-256 to OUT.sha256: both, or neither (ExportError)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(out) as temporary:
            shutil.copyfile(model, temporary)
        try:
            write_checksum(out, sha256_of(out))
        except BaseException:  # a model file whose digest is missing or stale: neither stays
            out.unlink(missing_ok=True)
            checksum_path(out).unlink(missing_ok=True)
            raise
    except OSError as error:
        raise ExportError(f"cannot write {out}: {error.strerror or error}") from None
