"""`catdog-study export`: write a trial's trained model as a self-describing file."""

from __future__ import annotations

from pathlib import Path

import click

from study.commands.options import storage_options


@click.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Model file to write (safetensors weights plus a JSON description).",
)
@click.option(
    "--trial",
    "trial_number",
    type=int,
    default=None,
    help="Trial number to export. Default: the best finished trial.",
)
@click.option("--force", is_flag=True, help="Replace --out (and its .sha256) if it exists.")
@storage_options
def export(
    out: Path,
    trial_number: int | None,
    force: bool,
    storage: str,
    study_name: str,
    artifact_dir: str,
) -> None:
    """Write the best (or a chosen) trial's trained model as a self-describing file."""
    # Imported here, not at the top: `catdog-study --help` must not load torch and Optuna.
    from study.attrs import TEST_ACCURACY_ATTR
    from study.results.best import best_trial, other_best
    from study.results.model_card import synthetic_warning
    from study.store.artifacts import open_artifact_store
    from study.store.export import export_checkpoint
    from study.store.studies import load_existing_study

    study = load_existing_study(storage, study_name)  # creates nothing: only reads
    trials = study.get_trials(deepcopy=False)
    best = best_trial(trials) if trial_number is None else None  # as report and the note name it
    trial, model_file = export_checkpoint(
        study,
        open_artifact_store(artifact_dir, create=False),
        out,
        trial_number if best is None else best.number,
        overwrite=force,
    )
    metrics = model_file.info.get("metrics", {})
    click.echo(
        f"exported trial {trial.number} ({model_file.image_size} px, test accuracy "
        f"{metrics.get(TEST_ACCURACY_ATTR, float('nan')):.2%}) to {out}, SHA-256 in {out}.sha256"
    )
    if best is not None and (other := other_best(study, trials)) is not None:
        label, rival = other
        click.echo(
            f"the {label}: trial {rival.number} (test accuracy "
            f"{rival.user_attrs.get(TEST_ACCURACY_ATTR, float('nan')):.2%}); "
            f"export it with --trial {rival.number}"
        )
    if (warning := synthetic_warning(out, model_file.info)) is not None:
        click.echo(warning, err=True)
