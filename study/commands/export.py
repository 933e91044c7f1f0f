"""`catdog-study export` and `catdog-study predict`: get a trained model out and use it."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import optuna
import torch

from catdog.images import ImageDecodeError, decode_image
from catdog.model import CLASS_NAMES
from catdog.modelfile import load_model_file, read_checksum
from catdog.train import predict_probabilities
from study.export import export_checkpoint
from study.options import storage_options
from study.storage import StorageError, open_artifact_store, open_storage


@click.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Model file to write (safetensors weights plus a JSON description).",
)
@click.option(
    "--trial",
    "trial_number",
    type=int,
    default=None,
    help="Trial number to export. Default: the best finished trial.",
)
@storage_options
def export(
    out: Path, trial_number: int | None, storage: str, study_name: str, artifact_dir: str
) -> None:
    """Write the best (or a chosen) trial's trained model as a self-describing file."""
    study = load_existing_study(storage, study_name)
    trial, model_file = export_checkpoint(
        study, open_artifact_store(artifact_dir), out, trial_number
    )
    metrics = model_file.info.get("metrics", {})
    click.echo(
        f"exported trial {trial.number} ({model_file.image_size} px, test accuracy "
        f"{metrics.get('test_accuracy', float('nan')):.2%}) to {out}, SHA-256 in {out}.sha256"
    )


@click.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
def predict(model: Path, images: tuple[Path, ...]) -> None:
    """Classify IMAGES with an exported MODEL file: prints cat or dog and its probability.

    The file's SHA-256 is checked against MODEL.sha256 when that file exists (export writes it).
    """
    model_file = load_model_file(model, expected_sha256=read_checksum(model))
    size = model_file.image_size
    status = 0
    for path in images:
        try:
            pixels = decode_image(path, size)
        except (ImageDecodeError, OSError) as error:
            click.echo(f"{path}: cannot classify: {error}", err=True)
            status = 1
            continue
        batch = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[None]
        probabilities = predict_probabilities(model_file.model, batch)[0]
        label = int(probabilities.argmax())
        click.echo(f"{path}: {CLASS_NAMES[label]} {probabilities[label]:.4f}")
    raise SystemExit(status)


def load_existing_study(storage: str, study_name: str) -> optuna.Study:
    """The study, or a one-line error naming the studies that do exist."""
    opened = open_storage(storage)
    try:
        return optuna.load_study(study_name=study_name, storage=opened)
    except KeyError:
        names = optuna.get_all_study_names(storage=opened)
        raise StorageError(
            f"no study named {study_name!r} in {storage}; studies there: "
            f"{', '.join(names) or 'none'}"
        ) from None
