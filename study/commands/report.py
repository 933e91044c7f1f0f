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
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The data set whose test set the best trial's confusion matrix is computed on. "
    "Default: the folder the best trial was trained on, as it stored it.",
)
@storage_options
def report(out: Path, data: Path | None, storage: str, study_name: str, artifact_dir: str) -> None:
    """Print every trial, best first, and the best trial class by class; write plots,
    its confusion matrix and summary.md. Works while the study runs.

    The confusion matrix comes from the best trial's stored model, run again on the test set
    (on the CPU; read from the cache, nothing written outside --out); with it come each class's
    accuracy and, where the test set's classes differ in size by more than 1.5 times, balanced
    accuracy.
    """
    # Imported here, not at the top: `catdog-study --help` must not load Optuna or matplotlib.
    from study.attrs import STUDY_DATA_ATTR
    from study.results.per_class import NoAnswers, answer_lines, best_trial_answers
    from study.results.plots import write_report
    from study.results.summary import study_is_synthetic, trial_table
    from study.store.artifacts import open_artifact_store
    from study.store.disk import writable_folder_problem
    from study.store.storage import StorageError, redacted_url
    from study.store.studies import load_existing_study

    study = load_existing_study(storage, study_name)
    trials = study.get_trials(deepcopy=False)  # one snapshot, so the files agree
    data_key = study.user_attrs.get(STUDY_DATA_ATTR, "unknown data")
    where = redacted_url(storage)
    click.echo(f"study {study_name!r} in {where}: {len(trials)} trials on {data_key}")
    if study_is_synthetic(study):
        click.echo("these figures are on SYNTHETIC shapes, not cats and dogs")
    click.echo(trial_table(trials).as_text())
    click.echo("")
    if problem := writable_folder_problem(out):  # e.g. a study read from read-only media
        raise click.ClickException(
            f"cannot write the plots and summary.md to {out}: {problem}; give --out a folder "
            "you can write"
        )
    try:
        store = open_artifact_store(artifact_dir, create=False)
        answers = best_trial_answers(study, trials, store, data)
    except (NoAnswers, StorageError) as why:
        answers = str(why)
    else:
        click.echo("\n".join(answer_lines(answers)))
        click.echo("")
    for written in write_report(study, out, trials=trials, answers=answers):
        if written.written:
            click.echo(f"wrote {out / written.name}")
        else:
            click.echo(f"skipped {written.name}: {written.reason}")
