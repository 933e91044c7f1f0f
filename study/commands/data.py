"""`catdog-study data ...`: make and inspect data sets."""

from __future__ import annotations

from pathlib import Path

import click

from catdog.synthetic import SyntheticSpec, write_synthetic_dataset
from study.data import SYNTHETIC_DIR


@click.group()
def data() -> None:
    """Make and inspect data sets."""


@data.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=SYNTHETIC_DIR,
    show_default=True,
    help="Folder to create (must not exist).",
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--train-per-class",
    default=SyntheticSpec.train_per_class,
    show_default=True,
    type=click.IntRange(min=1),
)
@click.option(
    "--test-per-class",
    default=SyntheticSpec.test_per_class,
    show_default=True,
    type=click.IntRange(min=1),
)
def synth(out: Path, seed: int, train_per_class: int, test_per_class: int) -> None:
    """Write the SYNTHETIC two-class set (ellipses vs polygons, not cats and dogs)."""
    if out.exists():
        raise click.ClickException(f"{out} already exists; remove it or choose another --out")
    spec = SyntheticSpec(seed=seed, train_per_class=train_per_class, test_per_class=test_per_class)
    write_synthetic_dataset(out, spec)
    click.echo(
        f"wrote {2 * train_per_class} training and {2 * test_per_class} test images "
        f"(SYNTHETIC shapes, {spec.image_size} px by default) to {out}"
    )
