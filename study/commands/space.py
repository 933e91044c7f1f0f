"""`catdog-study space ...`: look at search spaces."""

from __future__ import annotations

import click

from study.settings import DEFAULT_MAX_EPOCHS


@click.group()
def space() -> None:
    """Look at search spaces: the built-in ones and space files."""


@space.command()
@click.option(
    "--space",
    "spec",
    default="report",
    show_default=True,
    metavar="report|extended|PATH.toml",
    help="The space to show.",
)
@click.option(
    "--max-epochs",
    default=DEFAULT_MAX_EPOCHS,
    show_default=True,
    type=click.IntRange(min=1),
    help="Upper end of the epochs dimension of the report and extended spaces.",
)
def show(spec: str, max_epochs: int) -> None:
    """Print a search space as a space file: save it, edit it, pass it to optimize --space."""
    from study.space.file import space_to_toml  # Optuna, only when the command runs
    from study.space.resolve import resolve_space

    click.echo(space_to_toml(resolve_space(spec, max_epochs=max_epochs)), nl=False)
