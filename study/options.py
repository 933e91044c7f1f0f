"""Options shared by several commands: where the study lives, its data, which device trains."""

from __future__ import annotations

from collections.abc import Callable

import click

from study.storage import DEFAULT_ARTIFACT_DIR, DEFAULT_STORAGE


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
            default="catdog",
            envvar="CATDOG_STUDY",
            show_default=True,
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
    "Default: storage/data/dogs-cats-images when present, else the synthetic set.",
)
