"""`catdog-study optimize`: run (or continue) the study."""

from __future__ import annotations

import click
from click.core import ParameterSource

from catdog.config import PRECISIONS
from study.commands.options import data_option, device_option, storage_options
from study.settings import (
    DEFAULT_MAX_EPOCHS,
    DEFAULT_TRIALS,
    GRACE_PERIOD_S,
    HEARTBEAT_INTERVAL_S,
    PRUNERS,
    SPACE_NAMES,
    OptimizeSettings,
)


@click.command()
@click.option(
    "--trials",
    default=DEFAULT_TRIALS,
    show_default=True,
    type=click.IntRange(min=1),
    help="Trials this command runs; the report's 4 runs count among a new study's.",
)
@click.option(
    "--max-epochs",
    default=DEFAULT_MAX_EPOCHS,
    show_default=True,
    type=click.IntRange(min=1),
    help="Upper end of the epochs dimension (1..N) of the report and extended spaces.",
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
    metavar="report|extended|PATH.toml",
    help="Search space: report (optimizer, lr, shuffle, epochs), extended (adds batch size, "
    "weight decay, momentum, beta1, schedules, label smoothing, augmentation) or a space "
    "file; `catdog-study space show` prints one.",
)
@click.option(
    "--allow-space-change",
    is_flag=True,
    help="Continue a study with a different search space than it started with.",
)
@data_option
@click.option(
    "--image-size",
    type=click.IntRange(min=64),
    default=None,
    help="Training size in px. Default: 256 for real data, 64 for the synthetic set.",
)
@click.option(
    "--val-fraction",
    type=click.FloatRange(min=0, max=1, max_open=True),
    default=0.0,
    show_default=True,
    help="Hold out this fraction of each training class (seeded by --seed) to prune and rank "
    "trials on; the test set is then scored once per finished trial. 0: test set, as the report.",
)
@device_option
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
    help="Seeds the sampler, each trial's initialisation and batch order, and the "
    "--val-fraction split.",
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
@click.option(
    "--heartbeat",
    default=HEARTBEAT_INTERVAL_S,
    show_default=True,
    type=click.IntRange(min=1),
    help="Seconds between a running trial's heartbeats.",
)
@click.option(
    "--grace-period",
    default=GRACE_PERIOD_S,
    show_default=True,
    type=click.IntRange(min=1),
    help="Seconds without a heartbeat after which a trial's worker is taken for dead "
    "and the trial is queued again, to resume from its last epoch.",
)
@click.option(
    "--enqueue-trial",
    type=click.IntRange(min=0),
    multiple=True,
    metavar="N",
    help="Re-run trial N's configuration and seed first (repeatable); it counts among --trials.",
)
@click.option(
    "--enqueue-from",
    default=None,
    metavar="STUDY",
    help="The study (in the same --storage) holding the --enqueue-trial trials. "
    "Default: this study.",
)
@storage_options
def optimize(**options) -> None:
    """Search the training settings (by default the report's four) for the lowest test loss.

    Running the same command again continues the same study.
    """
    # Imported here, not at the top: `catdog-study --help` must not load torch and Optuna.
    from study.results.summary import describe_best
    from study.run.runner import run_optimize

    context = click.get_current_context()
    explicit_epochs = context.get_parameter_source("max_epochs") != ParameterSource.DEFAULT
    if explicit_epochs and options["space"] not in SPACE_NAMES:
        raise click.UsageError(
            "--max-epochs sets the epochs range of the report and extended spaces; "
            "a space file sets its own"
        )
    settings = OptimizeSettings(**options)
    try:
        study = run_optimize(settings)
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
