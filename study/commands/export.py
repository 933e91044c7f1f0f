"""`catdog-study export` and `catdog-study predict`: get a trained model out and use it."""

from __future__ import annotations

from pathlib import Path

import click

from study.commands.options import storage_options


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
    # Imported here, not at the top: `catdog-study --help` must not load torch and Optuna.
    from study.attrs import TEST_ACCURACY_ATTR
    from study.store.artifacts import open_artifact_store
    from study.store.export import export_checkpoint
    from study.store.studies import load_existing_study

    study = load_existing_study(storage, study_name)  # creates nothing: only reads
    trial, model_file = export_checkpoint(
        study, open_artifact_store(artifact_dir, create=False), out, trial_number
    )
    metrics = model_file.info.get("metrics", {})
    click.echo(
        f"exported trial {trial.number} ({model_file.image_size} px, test accuracy "
        f"{metrics.get(TEST_ACCURACY_ATTR, float('nan')):.2%}) to {out}, SHA-256 in {out}.sha256"
    )


@click.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
def predict(model: Path, images: tuple[Path, ...]) -> None:
    """Classify IMAGES with an exported MODEL file: prints cat or dog and its probability.

    The file's SHA-256 is checked against MODEL.sha256 when that file exists (export writes it).
    """
    import numpy as np  # torch: only when the command runs
    import torch

    from catdog.images import ImageDecodeError, decode_image
    from catdog.model import CLASS_NAMES
    from catdog.modelfile import load_model_file, read_checksum
    from catdog.train import predict_probabilities

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
