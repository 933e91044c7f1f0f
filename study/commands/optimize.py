"""`catdog-study optimize`: run (or continue) the study."""

from __future__ import annotations

import click

from catdog.device import PRECISIONS
from study.optimize import PRUNERS, OptimizeSettings, describe_best, run_optimize
from study.options import storage_options
from study.progress import Progress
from study.space import DEFAULT_MAX_EPOCHS


@click.command()
@click.option(
    "--trials",
    default=40,
    show_default=True,
    type=click.IntRange(min=1),
    help="Trials this command runs; the report's 4 runs count among a new study's.",
)
@click.option(
    "--max-epochs",
    default=DEFAULT_MAX_EPOCHS,
    show_default=True,
    type=click.IntRange(min=1),
    help="Upper end of the epochs dimension (1..N).",
)
@click.option(
    "--pruner",
    type=click.Choice(PRUNERS),
    default="hyperband",
    show_default=True,
    help="Stops trials whose test loss lags others at the same epoch.",
)
@click.option(
    "--space",
    default="report",
    show_default=True,
    help="Search space: report (optimizer, lr, shuffle, epochs).",
)
@click.option(
    "--data",
    default=None,
    metavar="PATH|synthetic",
    help="Data set folder in the Kaggle layout, or 'synthetic'. "
    "Default: storage/data/dogs-cats-images when present, else the synthetic set.",
)
@click.option(
    "--image-size",
    type=click.IntRange(min=64),
    default=None,
    help="Training size in px. Default: 256 for real data, 64 for the synthetic set.",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="auto, cpu, cuda or cuda:N; auto prefers CUDA.",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="auto",
    show_default=True,
    help="auto: bf16 on CUDA, and on CPU where a short probe shows it faster.",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Seeds the sampler and each trial's initialisation and batch order.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop starting new trials after this many seconds.",
)
@click.option(
    "--jobs",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Trials run at once, each in its own worker process.",
)
@click.option(
    "--compile",
    is_flag=True,
    help="torch.compile the model: compiled once per worker process and reused by every "
    "trial. Check with `bench --compile` first: on a 2-core CPU it slowed training down.",
)
@click.option(
    "--seed-configs/--no-seed-configs",
    default=True,
    show_default=True,
    help="Queue the report's four configurations first (skipped if already run).",
)
@storage_options
def optimize(**options) -> None:
    """Search optimizer, learning rate, shuffle and epochs for the lowest test loss.

    Running the same command again continues the same study.
    """
    settings = OptimizeSettings(**options)
    progress = Progress()
    try:
        study = run_optimize(settings, progress)
    except KeyboardInterrupt:
        click.echo(
            "\ninterrupted: the running trial is marked FAIL; every finished trial is "
            "kept. Run the same command again to continue the study.",
            err=True,
        )
        raise SystemExit(130) from None
    states = [t.state.name for t in study.get_trials(deepcopy=False)]
    counts = ", ".join(f"{states.count(s)} {s.lower()}" for s in sorted(set(states)))
    click.echo(
        f"\nstudy {study.study_name!r} in {settings.storage}: {len(states)} trials ({counts})"
    )
    click.echo(describe_best(study))
    click.echo(
        "browse it: catdog-study dashboard    export the best model: "
        "catdog-study export --out best.safetensors"
    )
