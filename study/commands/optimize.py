"""`catdog-study optimize`: run (or continue) the study."""

from __future__ import annotations

import errno
import shlex
import sys

import click
from click.core import ParameterSource

from catdog.config import PRECISIONS
from study.commands.options import data_option, device_option, storage_options
from study.settings import (
    DEFAULT_ARTIFACT_DIR,
    DEFAULT_MAX_EPOCHS,
    DEFAULT_OBJECTIVE,
    DEFAULT_PRUNER,
    DEFAULT_STORAGE,
    DEFAULT_STORAGE_TIMEOUT_S,
    DEFAULT_STUDY_NAME,
    DEFAULT_TRIALS,
    GRACE_PER_HEARTBEAT,
    GRACE_PERIOD_S,
    HEARTBEAT_INTERVAL_S,
    MIN_GRACE_PER_HEARTBEAT,
    OBJECTIVES,
    PRUNERS,
    SPACE_NAMES,
    OptimizeSettings,
    grace_period_problem,
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
    default=DEFAULT_PRUNER,
    show_default=True,
    help="Stops trials whose test loss lags others at the same epoch: median from epoch 4 "
    "(after 5 finished trials), hyperband from epoch 2, none.",
)
@click.option(
    "--objective",
    type=click.Choice(OBJECTIVES),
    default=None,
    help="What the study ranks its trials by: the last epoch's test accuracy (minimising the "
    "error, 1 - accuracy) or its test loss. Pruning compares test losses either way. Default: "
    f"{DEFAULT_OBJECTIVE} for a new study; a study keeps the one it started with.",
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
    "trials on; the test set is then scored once per finished trial. 0: the data set's val/ "
    "folder if it has one, else the test set, as the report.",
)
@device_option
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="auto",
    show_default=True,
    help="auto: bf16 on CUDA, and on a CPU with bf16 instructions (AVX512-BF16, AMX-BF16, Arm "
    "BF16), else fp32; the choice and its reason are printed. A study keeps its choice.",
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
    "--fuse",
    default="auto",
    show_default=True,
    metavar="K|auto",
    callback=lambda context, parameter, value: _fuse(value),
    help="Trials one worker trains at once, as one fused network (K convolutions as one grouped "
    "convolution; each trial exactly as alone). auto: measured at start on a GPU with --jobs 1, "
    "1 on a CPU, where fusing gains nothing.",
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
    default=None,
    type=click.IntRange(min=1),
    help="Seconds without a heartbeat after which a trial's worker on another machine is "
    "taken for dead and the trial is queued again, to resume from its last epoch (a dead "
    f"worker on this machine is noticed at once). At least {MIN_GRACE_PER_HEARTBEAT} "
    f"heartbeats. Default: {GRACE_PER_HEARTBEAT} x --heartbeat, at least {GRACE_PERIOD_S}.",
)
@click.option(
    "--storage-timeout",
    default=DEFAULT_STORAGE_TIMEOUT_S,
    show_default=True,
    envvar="CATDOG_STORAGE_TIMEOUT",
    type=click.FloatRange(min=0),
    metavar="S",
    help="Seconds a run waits for a study database that stops answering (a PostgreSQL "
    "restart or failover) before it stops; the next run takes its trial over.",
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
@click.option(
    "--quiet",
    "-q",
    "verbosity",
    flag_value=-1,
    help="Print only the end of the run (best trial, next steps) and errors.",
)
@click.option(
    "--verbose",
    "-v",
    "verbosity",
    flag_value=1,
    help="Also print every setting of each trial and Optuna's own log lines.",
)
@storage_options
def optimize(verbosity: int | None, **options) -> None:
    """Search the training settings (by default the report's four) for the highest test
    accuracy (or, with --objective loss, the lowest test loss).

    Running the same command again continues the same study.
    """
    # Stop signals first, so that Ctrl-C at any moment, even while torch loads, ends the run
    # with its message; the rest is imported here, not at the top, so that `--help` is quick.
    from study.run.signals import Stopped, StopSignals

    settings = _settings(options)
    display = _display(settings.trials, verbosity or 0)
    with StopSignals() as stops:
        try:
            from study.results.summary import describe_best
            from study.run.progress import Progress
            from study.run.runner import run_optimize
            from study.store.storage import redacted_url

            progress = Progress(stops=stops, display=display, verbose=verbosity == 1)
            study = run_optimize(settings, stops, progress)
            display.close()
            where = redacted_url(settings.storage)
            _say([f"\nstudy {study.study_name!r} in {where}: {_counts(study)}"])
            _say([describe_best(study), *_next_steps(settings, where)])
        except Stopped as stopped:
            _say([f"\n{stopped.message}{_queue_order(settings, stopped.trials)}"], err=True)
            raise SystemExit(stopped.exit_code) from None
        except Exception as error:
            if stops.stopped is None:
                raise
            _say([f"\n{stops.stopped.unfinished(error)}"], err=True)
            raise SystemExit(stops.stopped.exit_code) from None
        finally:
            display.close()


def _display(trials: int, verbosity: int):
    """A live bar on a terminal, plain lines with progress lines elsewhere (a pipe, a log
    file, CI), only the run's end with --quiet."""
    from study.run.display import LiveDisplay, PlainDisplay

    if verbosity < 0:
        return PlainDisplay(trials, lines=False)
    if sys.stdout.isatty():
        return LiveDisplay(trials)
    return PlainDisplay(trials)


def _fuse(value: str) -> str:
    if value == "auto" or (value.isdigit() and int(value) >= 1):
        return value
    raise click.BadParameter(f"{value!r} is neither auto nor a whole number of at least 1")


def _settings(options: dict) -> OptimizeSettings:
    """The settings, after the checks that need to know which options were given."""
    context = click.get_current_context()
    explicit_epochs = context.get_parameter_source("max_epochs") != ParameterSource.DEFAULT
    if explicit_epochs and options["space"] not in SPACE_NAMES:
        raise click.UsageError(
            "--max-epochs sets the epochs range of the report and extended spaces; "
            "a space file sets its own"
        )
    settings = OptimizeSettings(**options)
    if problem := grace_period_problem(settings.heartbeat, settings.grace_period_s):
        raise click.UsageError(problem)
    return settings


def _queue_order(settings: OptimizeSettings, stopped: list[int]) -> str:
    """Where the next run resumes the stopped trials: after the trials queued before them
    (the report's runs, re-runs), when there are any; "" when none are, or it cannot tell."""
    if not stopped:
        return ""
    from study.store.resume import queued_before
    from study.store.studies import load_existing_study

    try:
        study = load_existing_study(settings.storage, settings.study_name)
        before = queued_before(study, stopped)
    except Exception:  # noqa: BLE001 - the stop line is said in any case
        return ""
    if not before:
        return ""
    them = "it" if len(stopped) == 1 else "them"
    trials = "trial" if before == 1 else "trials"
    return f" It resumes after the {before} {trials} queued before {them}."


def _counts(study) -> str:
    states = [t.state.name for t in study.get_trials(deepcopy=False)]
    counts = ", ".join(f"{states.count(s)} {s.lower()}" for s in sorted(set(states)))
    return f"{len(states)} trials ({counts})"


def _next_steps(settings: OptimizeSettings, where: str) -> list[str]:
    """What to do next, with the options that find this study again (a password shown as ***:
    type it, or set CATDOG_STORAGE)."""
    options = ""
    for option, value, default in (
        ("--storage", where, DEFAULT_STORAGE),
        ("--study-name", settings.study_name, DEFAULT_STUDY_NAME),
        ("--artifact-dir", settings.artifact_dir, DEFAULT_ARTIFACT_DIR),
    ):
        if value != default:
            options += f" {option} {shlex.quote(str(value))}"
    return [
        f"browse it: catdog-study dashboard{options}",
        f"plots and a summary: catdog-study report{options}",
        f"export the best model: catdog-study export{options} --out best.safetensors",
    ]


def _say(lines: list[str], err: bool = False) -> None:
    """Print the run's last lines; an output closed meanwhile (`| head`) loses nothing."""
    from study.run.signals import silence_stdout

    try:
        for line in lines:
            click.echo(line, err=err)
    except OSError as error:
        if error.errno not in (errno.EPIPE, errno.EIO):
            raise
        silence_stdout()
