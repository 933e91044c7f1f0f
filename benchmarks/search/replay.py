"""Replay a study against a recording: the product's search, with recorded curves for training.

    python -m benchmarks.search.replay benchmarks/search/recordings/dev-2000-128px.json \
        --candidate today --seed 0

Each replayed study is what `catdog-study optimize --trials 40 --seed SEED` does, except that a
trial reads its epochs from the recording instead of training: the product's search space
(report_space), sampler (make_sampler, seeded like its first worker) and queueing of the report's
four runs (enqueue_paper_runs, never pruned: study.attrs.is_prunable), the study name `catdog`
(Hyperband assigns trials to brackets by a hash of the study name and trial number), a report of
every epoch's signal and a pruning check after every epoch but the last, as the product's
objective does. A trial's continuous lr is snapped to the nearest recorded lr of its optimizer
and shuffle setting in log space; the sampler still sees the lr it asked for. Real trial n trains
with seed --seed + n; a replayed trial reads one recorded training seed of its configuration,
drawn from (study seed, trial number), so repeated configurations see seed noise as real ones do
when the recording holds more than one seed.

A recording with a validation part (record --val-fraction) can be replayed either way a study can
select: `--select test` (today's way: each epoch's test loss to the pruner, the final test figure
as the objective) or `--select val` (as `optimize --val-fraction`: the validation part's loss to
the pruner and its final figure as the objective). Every trial keeps both sets' final figures, so
the trial a study calls best can be scored on the set that did not pick it. The best trial is the
product's own (study.results.best.best_trial: equal values go to the lower loss).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from benchmarks.search.candidates import Candidate, candidate
from benchmarks.search.recording import Recording, Run, load_recording
from study.attrs import EVAL_SPLIT_ATTR, PAPER_RUN_ATTR, is_prunable, loss_attr
from study.results.best import best_trial
from study.run.queue import enqueue_paper_runs
from study.settings import DEFAULT_STUDY_NAME, DEFAULT_TRIALS
from study.space.builtin import report_space
from study.space.dimensions import to_config

OBJECTIVES = ("loss", "accuracy")  # what a finished trial returns: its final loss or error
SIGNALS = ("loss", "accuracy")  # what each epoch reports to the pruner
SELECTIONS = ("test", "val")  # the set both are read from: the test set or the validation part
PARTIAL_HELP = (
    "a preview on a recording still being written: a trial whose configuration is not "
    "recorded yet fails before its first epoch"
)


class ReplayDiverged(RuntimeError):
    """The recorded run's loss stopped being finite: the trial fails, as in the product."""


class NotRecordedYet(RuntimeError):
    """A partial replay's trial whose configuration the recording does not hold yet: it fails
    before its first epoch (counted as failed, never best)."""


# A partial replay takes a recorded lr for a trial only this close in log10 space: half a step
# of the 4-a-decade grid. Farther, the trial's own grid point is not recorded yet.
PARTIAL_SNAP_DECADES = 0.125


@dataclass(frozen=True)
class TrialOutcome:
    number: int
    state: str  # "complete", "pruned" or "failed"
    optimizer: str
    lr: float  # as the sampler asked for it
    grid_lr: float  # the recorded lr it was snapped to
    shuffle: bool
    epochs: int  # planned
    epochs_run: int  # the cost: epochs trained before it finished, was pruned or failed
    recorded_seed: int
    test_loss: float  # after its last epoch run (nan when none)
    test_accuracy: float
    seconds: float  # recorded wall time of the epochs it ran
    paper_run: str | None  # the report's configuration it is, if queued as one
    val_loss: float = math.nan  # the same on the validation part (nan: the recording has none)
    val_accuracy: float = math.nan

    def accuracy(self, split: str) -> float:
        """The final accuracy on "test" or "val"."""
        return self.test_accuracy if split == "test" else self.val_accuracy


@dataclass
class StudyOutcome:
    candidate: str
    seed: int
    objective: str
    signal: str
    best_number: int | None  # the trial the study calls best (by its objective)
    trials: list[TrialOutcome] = field(default_factory=list)
    select: str = "test"  # the set the signal and the objective were read from

    @property
    def best(self) -> TrialOutcome | None:
        return next((t for t in self.trials if t.number == self.best_number), None)

    def count(self, state: str) -> int:
        return sum(t.state == state for t in self.trials)

    @property
    def epochs(self) -> int:
        return sum(t.epochs_run for t in self.trials)

    @property
    def seconds(self) -> float:
        return sum(t.seconds for t in self.trials)


@dataclass
class ReplayObjective:
    recording: Recording
    space_max_epochs: int
    study_seed: int
    objective: str
    signal: str
    noise: bool = True  # draw one of the recorded seeds per trial; False: always the first
    select: str = "test"  # read the signal and the objective from the test set or "val"
    partial: bool = False  # a recording still being written: see NotRecordedYet
    outcomes: list[TrialOutcome] = field(default_factory=list)

    def __call__(self, trial: optuna.Trial) -> float:
        config = to_config(report_space(self.space_max_epochs).suggest(trial))
        if self.partial:
            self._check_recorded(trial, config)
        grid_lr = self.recording.snap_lr(config.optimizer, config.shuffle, config.lr)
        run = self._run(config.optimizer, grid_lr, config.shuffle, trial.number)
        prunable = is_prunable(trial.user_attrs)
        outcome = dict(
            number=trial.number,
            optimizer=config.optimizer,
            lr=config.lr,
            grid_lr=grid_lr,
            shuffle=config.shuffle,
            epochs=config.epochs,
            recorded_seed=run.seed,
            paper_run=trial.user_attrs.get(PAPER_RUN_ATTR),
        )
        if config.epochs > run.epochs and run.diverged_in_epoch is None:
            raise ValueError(
                f"the recording holds {run.epochs} epochs of {config.optimizer} lr {grid_lr:g}; "
                f"trial {trial.number} wants {config.epochs}"
            )
        for epoch in range(1, config.epochs + 1):
            if epoch == run.diverged_in_epoch:
                self._record(outcome, "failed", epoch, run)
                raise ReplayDiverged(f"diverged in epoch {epoch}")
            trial.report(self._value(run, epoch, self.signal), epoch)
            if epoch < config.epochs and prunable and trial.should_prune():
                self._record(outcome, "pruned", epoch, run)
                raise optuna.TrialPruned(f"pruned after epoch {epoch}")
        self._record(outcome, "complete", config.epochs, run)
        # What the product's best_trial reads to order equal values, as the objective stores it.
        trial.set_user_attr(EVAL_SPLIT_ATTR, self.select)
        trial.set_user_attr(loss_attr(self.select), self._value(run, config.epochs, "loss"))
        return self._value(run, config.epochs, self.objective)

    def _check_recorded(self, trial: optuna.Trial, config) -> None:
        grid = self.recording.grid_lrs(config.optimizer, config.shuffle)
        if grid and min(abs(math.log10(g / config.lr)) for g in grid) <= PARTIAL_SNAP_DECADES:
            return
        nan = math.nan
        self.outcomes.append(
            TrialOutcome(
                trial.number, "failed", config.optimizer, config.lr, nan, config.shuffle,
                config.epochs, 0, -1, nan, nan, 0.0, trial.user_attrs.get(PAPER_RUN_ATTR),
            )
        )  # fmt: skip
        raise NotRecordedYet(f"{config.optimizer} lr {config.lr:g} is not recorded yet")

    def _run(self, optimizer: str, lr: float, shuffle: bool, number: int) -> Run:
        seeds = self.recording.seeds_of(optimizer, lr, shuffle)
        if not seeds:
            raise KeyError(f"the recording has no run of {optimizer} lr {lr:g} shuffle {shuffle}")
        chosen = seeds[0]
        if self.noise:
            chosen = seeds[random.Random(f"{self.study_seed}/{number}").randrange(len(seeds))]
        return self.recording.find(optimizer, lr, shuffle, chosen)

    def _value(self, run: Run, epoch: int, figure: str) -> float:
        # As the product's trial_value: lower is better, accuracy as the error 1 - accuracy.
        losses, accuracies = (
            (run.test_loss, run.test_accuracy)
            if self.select == "test"
            else (run.val_loss, run.val_accuracy)
        )
        if figure == "loss":
            return losses[epoch - 1]
        return 1.0 - accuracies[epoch - 1]

    def _record(self, outcome: dict, state: str, epochs_run: int, run: Run) -> None:
        shown = min(epochs_run, run.epochs)
        self.outcomes.append(
            TrialOutcome(
                **outcome,
                state=state,
                epochs_run=epochs_run,
                test_loss=run.test_loss[shown - 1] if shown else math.nan,
                test_accuracy=run.test_accuracy[shown - 1] if shown else math.nan,
                seconds=sum(run.seconds[:shown]),
                val_loss=run.val_loss[shown - 1] if shown and run.val_loss else math.nan,
                val_accuracy=(
                    run.val_accuracy[shown - 1] if shown and run.val_accuracy else math.nan
                ),
            )
        )


def replay_study(
    recording: Recording,
    search: Candidate,
    *,
    seed: int,
    trials: int = DEFAULT_TRIALS,
    objective: str = "loss",
    signal: str = "loss",
    max_epochs: int | None = None,
    paper_runs: bool = True,
    noise: bool = True,
    study_name: str = DEFAULT_STUDY_NAME,
    select: str = "test",
    partial: bool = False,
) -> StudyOutcome:
    """One study of `trials` trials (the report's four among them) replayed on `recording`,
    selecting on the test set or (select="val") on the recording's validation part. partial:
    trials of configurations the recording does not hold yet fail (a preview)."""
    if objective not in OBJECTIVES or signal not in SIGNALS:
        raise ValueError(f"objective and signal must each be one of {', '.join(OBJECTIVES)}")
    if select not in SELECTIONS:
        raise ValueError(f"select must be one of {', '.join(SELECTIONS)}")
    if select == "val" and not recording.has_validation:
        raise ValueError("the recording has no validation part: record it with --val-fraction")
    max_epochs = max_epochs or recording.max_epochs
    if max_epochs > recording.max_epochs:
        raise ValueError(f"the recording holds {recording.max_epochs} epochs, not {max_epochs}")
    space = report_space(max_epochs)
    study = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(),
        study_name=study_name,
        direction="minimize",  # as the product's studies: --objective accuracy minimises the error
        sampler=search.make_sampler(space, seed),
        pruner=search.make_pruner(max_epochs),
    )
    if paper_runs:
        enqueue_paper_runs(study, max_epochs, space)
    replay = ReplayObjective(
        recording, max_epochs, seed, objective, signal, noise, select, partial
    )
    study.optimize(replay, n_trials=trials, catch=(ReplayDiverged, NotRecordedYet))
    best = best_trial(study.get_trials(deepcopy=False))
    number = best.number if best is not None else None
    return StudyOutcome(search.name, seed, objective, signal, number, replay.outcomes, select)


def print_study(outcome: StudyOutcome) -> None:
    """The trials as the study ran them (* marks its best); val acc with a validation part."""
    val = not all(math.isnan(t.val_accuracy) for t in outcome.trials)
    print(
        f"{'#':>3} {'state':9} {'opt':4} {'lr':>9} {'grid lr':>9} {'shuf':4} "
        f"{'ep':>5} {'loss':>7} {'acc':>6}  " + ("val acc  " if val else "") + "report"
    )
    for t in outcome.trials:
        star = "*" if t.number == outcome.best_number else " "
        print(
            f"{t.number:>3}{star}{t.state:9} {t.optimizer:4} {t.lr:9.3g} {t.grid_lr:9.3g} "
            f"{'on' if t.shuffle else 'off':4} {t.epochs_run:>2}/{t.epochs:<2} "
            f"{t.test_loss:7.4f} {100 * t.test_accuracy:5.1f}%  "
            + (f"{100 * t.val_accuracy:6.1f}%  " if val else "")
            + (t.paper_run or "")
        )
    best = outcome.best
    picked = "validation" if outcome.select == "val" else "test"
    print(
        f"best trial {outcome.best_number}, picked on the {picked} set "
        f"({100 * best.test_accuracy:.1f} % test accuracy); "
        f"{outcome.epochs} epochs, {outcome.count('pruned')} pruned, "
        f"{outcome.count('failed')} failed"
        if best
        else "no finished trial"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Replay one study against a recording.")
    parser.add_argument("recording", type=Path)
    parser.add_argument("--candidate", default="today")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=DEFAULT_TRIALS)
    parser.add_argument("--objective", choices=OBJECTIVES, default="loss")
    parser.add_argument("--signal", choices=SIGNALS, default="loss")
    parser.add_argument(
        "--select",
        choices=SELECTIONS,
        default="test",
        help="read signal and objective from the test set (today's way) or the validation part",
    )
    parser.add_argument("--max-epochs", type=int)
    parser.add_argument("--partial", action="store_true", help=PARTIAL_HELP)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    outcome = replay_study(
        load_recording(args.recording),
        candidate(args.candidate),
        seed=args.seed,
        trials=args.trials,
        objective=args.objective,
        signal=args.signal,
        max_epochs=args.max_epochs,
        select=args.select,
        partial=args.partial,
    )
    print_study(outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
