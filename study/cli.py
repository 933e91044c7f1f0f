"""`catdog-study`: the command line. Each command lives in study/commands/."""

from __future__ import annotations

import warnings

import click

from catdog.dataset import DatasetError
from catdog.device import DeviceError
from catdog.modelfile import ModelFileError
from study.commands.bench import bench
from study.commands.dashboard import dashboard
from study.commands.data import data
from study.commands.export import export, predict
from study.commands.optimize import optimize
from study.commands.report import report
from study.commands.space import space
from study.download import DownloadError
from study.export import ExportError
from study.rerun import RerunError
from study.space import SpaceError
from study.storage import StorageError
from study.studies import StudyMismatch

# Errors a user can cause: they end in one line ("Error: ...") and exit status 1.
USER_ERRORS = (
    DatasetError,
    DeviceError,
    DownloadError,
    ExportError,
    ModelFileError,
    StorageError,
    StudyMismatch,
    FileExistsError,
    FileNotFoundError,
    PermissionError,
    RerunError,
    SpaceError,
)


class CatdogGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except USER_ERRORS as error:
            # One "Error: " line per problem (a space file may have several).
            raise click.ClickException("\nError: ".join(str(error).splitlines())) from None


@click.group(cls=CatdogGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="catdog-study")
def cli() -> None:
    """Hyperparameter study of the 2022 cats-vs-dogs report's CNN, with Optuna."""


cli.add_command(optimize)
cli.add_command(export)
cli.add_command(predict)
cli.add_command(dashboard)
cli.add_command(data)
cli.add_command(space)
cli.add_command(report)
cli.add_command(bench)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def main() -> None:
    warnings.formatwarning = _one_line_warning
    cli()


if __name__ == "__main__":
    main()
