"""`catdog-study predict`: classify image files, folders and patterns with an exported model."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import click

from study.commands.options import device_option

FORMATS = ("text", "csv", "json")


@click.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("images", nargs=-1, required=True)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text: 'IMAGE: cat 0.9970' lines (the likeliest class); csv or json: one row per "
    "file with a probability per class, or the reason it could not be classified.",
)
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="First describe the model, as `catdog-study show` does (on stderr).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Images decoded and classified at once; two batches are held in memory at most.",
)
@device_option
def predict(
    model: Path,
    images: tuple[str, ...],
    output_format: str,
    verbose: bool,
    batch_size: int,
    device: str,
) -> None:
    """Classify IMAGES with an exported MODEL file: which class (cat or dog for the
    report's set), and how likely.

    IMAGES are files, folders (every image in them and below, hidden files skipped) or quoted
    glob patterns ('photos/*.jpg', 'photos/**/*.png'). The file's SHA-256 is checked against
    MODEL.sha256 when that file exists (export writes it). Warnings and files that cannot be
    classified go to stderr (in csv and json, to the error field too); the exit status is 1
    when any file could not be classified.
    """
    # torch: only when the command runs, never for `--help`.
    from catdog.device import resolve_device
    from catdog.modelfile import load_model_file, read_checksum
    from catdog.predict import classify_files, image_paths
    from study.results.model_card import card_lines, checksum, model_summary, synthetic_warning

    model_file = load_model_file(
        model, expected_sha256=read_checksum(model), device=resolve_device(device)
    )
    info = model_file.info
    paths = image_paths(images)
    if verbose:
        click.echo("\n".join(card_lines(info, checksum(model))), err=True)
    if (warning := synthetic_warning(model, info)) is not None:
        click.echo(warning, err=True)

    class_names = model_file.class_names
    predictions = classify_files(model_file.model, paths, batch_size=batch_size)
    if output_format == "text":
        failed = _write_text(predictions, class_names)
    else:
        rows = (_row(prediction, class_names) for prediction in predictions)
        if output_format == "csv":
            failed = _write_csv(rows, class_names)
        else:
            failed = _write_json(rows, model_summary(info, checksum(model)))
        if failed:
            click.echo(
                f"warning: {failed} of {len(paths)} files could not be classified: their "
                "error field says why",
                err=True,
            )
    if failed:
        raise SystemExit(1)


def _write_text(predictions: Iterable, class_names: tuple[str, ...]) -> int:
    """Today's lines: 'IMAGE: cat 0.9970' on stdout, 'IMAGE: cannot classify: ...' on stderr."""
    from catdog.names import printable

    failed = 0
    for prediction in predictions:
        label, path = prediction.label, printable(prediction.path)
        if label is None:
            click.echo(f"{path}: cannot classify: {prediction.error}", err=True)
            failed += 1
        else:
            probability = prediction.probabilities[label]
            click.echo(f"{path}: {class_names[label]} {probability:.4f}")
    return failed


def _row(prediction, class_names: tuple[str, ...]) -> dict:
    """path, label, p_<class> for each class (p_cat, p_dog) and error; the label and
    probabilities are None on error.

    A name that is not UTF-8 is written with backslash escapes, as in the text lines: CSV and
    JSON are read as UTF-8.
    """
    from catdog.names import printable

    row = {"path": printable(prediction.path), "label": None}
    row |= {f"p_{name}": None for name in class_names}
    if prediction.label is not None:
        row["label"] = class_names[prediction.label]
        for name, probability in zip(class_names, prediction.probabilities, strict=True):
            row[f"p_{name}"] = round(probability, 6)
    return row | {"error": prediction.error}


def _write_csv(rows: Iterable[dict], class_names: tuple[str, ...]) -> int:
    import csv
    import io

    columns = ["path", "label", *(f"p_{name}" for name in class_names), "error"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    failed = 0
    for row in rows:
        writer.writerow(row)  # None becomes an empty field
        failed += row["error"] is not None
        click.echo(buffer.getvalue(), nl=False)  # row by row: a big folder is never held
        buffer.seek(0)
        buffer.truncate()
    return failed


def _write_json(rows: Iterable[dict], model: dict) -> int:
    """{"model": {...}, "predictions": [{...}, ...]}, written row by row."""
    import json

    click.echo(f'{{"model": {json.dumps(model)},\n "predictions": [', nl=False)
    failed, separator = 0, "\n  "
    for row in rows:
        click.echo(separator + json.dumps(row), nl=False)
        failed += row["error"] is not None
        separator = ",\n  "
    click.echo("\n]}")
    return failed
