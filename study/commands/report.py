"""`catdog-study report`: the trials table in the terminal, plots and summary.md in a folder."""

from __future__ import annotations

from pathlib import Path

import click

from study.commands.export import load_existing_study
from study.options import storage_options
from study.report import write_report
from study.summary import is_synthetic, trial_table

DEFAULT_OUT = Path("storage/report")


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_OUT,
    show_default=True,
    help="Folder for the PNG plots and summary.md (created; files in it are replaced).",
)
@storage_options
def report(out: Path, storage: str, study_name: str, artifact_dir: str) -> None:
    """Print every trial, best first; write plots and summary.md. Works while the study runs."""
    study = load_existing_study(storage, study_name)
    trials = study.get_trials(deepcopy=False)
    data = study.user_attrs.get("data", "unknown data")
    click.echo(f"study {study_name!r} in {storage}: {len(trials)} trials on {data}")
    if is_synthetic(study):
        click.echo("these figures are on SYNTHETIC shapes, not cats and dogs")
    click.echo(trial_table(trials).as_text())
    click.echo("")
    for written in write_report(study, out):
        if written.written:
            click.echo(f"wrote {out / written.name}")
        else:
            click.echo(f"skipped {written.name}: {written.reason}")
