"""`catdog-study report`: the trials table in the terminal, plots and summary.md in a folder."""

from __future__ import annotations

from pathlib import Path

import click

from study.commands.options import storage_options
from study.settings import DEFAULT_REPORT_DIR


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_REPORT_DIR,
    show_default=True,
    help="Folder for the PNG plots and summary.md (created; files in it are replaced).",
)
@storage_options
def report(out: Path, storage: str, study_name: str, artifact_dir: str) -> None:
    """Print every trial, best first; write plots and summary.md. Works while the study runs."""
    # Imported here, not at the top: `catdog-study --help` must not load Optuna or matplotlib.
    from study.attrs import STUDY_DATA_ATTR
    from study.results.plots import write_report
    from study.results.summary import study_is_synthetic, trial_table
    from study.store.disk import writable_folder_problem
    from study.store.storage import redacted_url
    from study.store.studies import load_existing_study

    study = load_existing_study(storage, study_name)
    trials = study.get_trials(deepcopy=False)
    data = study.user_attrs.get(STUDY_DATA_ATTR, "unknown data")
    where = redacted_url(storage)
    click.echo(f"study {study_name!r} in {where}: {len(trials)} trials on {data}")
    if study_is_synthetic(study):
        click.echo("these figures are on SYNTHETIC shapes, not cats and dogs")
    click.echo(trial_table(trials).as_text())
    click.echo("")
    if problem := writable_folder_problem(out):  # e.g. a study read from read-only media
        raise click.ClickException(
            f"cannot write the plots and summary.md to {out}: {problem}; give --out a folder "
            "you can write"
        )
    for written in write_report(study, out):
        if written.written:
            click.echo(f"wrote {out / written.name}")
        else:
            click.echo(f"skipped {written.name}: {written.reason}")
