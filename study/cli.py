"""`catdog-study`: the command line. Each command lives in study/commands/.

Commands are loaded lazily (click's documented LazyGroup pattern): a command's module is
imported only when that command runs or `--help` lists it, and command modules import torch,
Optuna, optuna-dashboard and matplotlib inside the command, so `catdog-study --help` and
`catdog-study space show` start without them.
"""

from __future__ import annotations

import importlib
import warnings

import click

from catdog.errors import USER_ERRORS

# Command name -> "module:attribute" of its click command.
COMMANDS = {
    "bench": "study.commands.bench:bench",
    "dashboard": "study.commands.dashboard:dashboard",
    "data": "study.commands.data:data",
    "export": "study.commands.export:export",
    "optimize": "study.commands.optimize:optimize",
    "predict": "study.commands.predict:predict",
    "report": "study.commands.report:report",
    "show": "study.commands.show:show",
    "space": "study.commands.space:space",
}


class CatdogGroup(click.Group):
    """Loads each command on first use, and shows every error a user can cause as one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name].split(":")
        return getattr(importlib.import_module(module), attribute)

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


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def main() -> None:
    warnings.formatwarning = _one_line_warning
    cli()


if __name__ == "__main__":
    main()
