"""Options shared by several commands: where the study lives, its data, which device trains.

Like every module the command line loads for `--help`, this one imports click and the settings
only.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from study.settings import (
    DEFAULT_ARTIFACT_DIR,
    DEFAULT_STORAGE,
    DEFAULT_STUDY_NAME,
    REAL_DATA_DIR,
)


def storage_options(command: Callable) -> Callable:
    """--storage, --study-name and --artifact-dir, with their environment variables."""
    options = [
        click.option(
            "--storage",
            default=DEFAULT_STORAGE,
            envvar="CATDOG_STORAGE",
            show_default=True,
            help="Optuna storage URL: sqlite:///FILE, or postgresql://USER:PASS@HOST/DB "
            "for workers on several machines.",
        ),
        click.option(
            "--study-name",
            default=DEFAULT_STUDY_NAME,
            envvar="CATDOG_STUDY",
            show_default=True,
            callback=_named,
            help="Name of the study in the storage.",
        ),
        click.option(
            "--artifact-dir",
            default=DEFAULT_ARTIFACT_DIR,
            envvar="CATDOG_ARTIFACT_DIR",
            show_default=True,
            type=click.Path(file_okay=False),
            help="Folder of the artifact store that holds trial checkpoints.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _named(context: click.Context, parameter: click.Parameter, name: str) -> str:
    """A study name a user can see and type again: not empty, not only spaces."""
    if not name.strip():
        raise click.BadParameter("a study needs a name (leave the option out for 'catdog')")
    return name


device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="auto, cpu, cuda or cuda:N; auto prefers CUDA, an absent device is an error.",
)

data_option = click.option(
    "--data",
    default=None,
    metavar="PATH|synthetic",
    help="Data set folder in the Kaggle layout, or 'synthetic'. "
    f"Default: {REAL_DATA_DIR} when present, else the synthetic set.",
)
