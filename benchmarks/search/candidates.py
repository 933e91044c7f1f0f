"""Named search settings to compare: a pruner and the sampler's start-up trials.

A candidate's sampler is the product's own (study.run.study.make_sampler: TPE, constant liar,
seeded like the product's first worker), with only its number of random start-up trials set
when the candidate asks for one. `default` is what `catdog-study optimize` runs by default now
(the median pruner from epoch 4); `today` is the default it replaced (hyperband from epoch 2).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import optuna

from study.run.study import make_pruner, make_sampler, worker_seed
from study.settings import DEFAULT_PRUNER
from study.space.dimensions import SearchSpace

PrunerFactory = Callable[[int], optuna.pruners.BasePruner]  # max_epochs -> pruner


@dataclass(frozen=True)
class Candidate:
    name: str
    pruner: PrunerFactory
    startup_trials: int | None = None  # TPE's random start-up trials; None: the product's
    description: str = ""

    def make_pruner(self, max_epochs: int) -> optuna.pruners.BasePruner:
        return self.pruner(max_epochs)

    def make_sampler(self, space: SearchSpace, seed: int) -> optuna.samplers.BaseSampler:
        """The product's sampler for `optimize --seed seed` (its first worker's seed)."""
        sampler = make_sampler(space, worker_seed(seed, 0))
        if self.startup_trials is not None:
            if not hasattr(sampler, "_n_startup_trials"):
                raise RuntimeError("this Optuna's TPESampler has no _n_startup_trials to set")
            sampler._n_startup_trials = self.startup_trials
        return sampler


def hyperband(min_resource: int, reduction_factor: int) -> PrunerFactory:
    return lambda max_epochs: optuna.pruners.HyperbandPruner(
        min_resource=min_resource,
        max_resource=max(max_epochs, min_resource),
        reduction_factor=reduction_factor,
    )


def halving(min_resource: int, reduction_factor: int) -> PrunerFactory:
    return lambda _max_epochs: optuna.pruners.SuccessiveHalvingPruner(
        min_resource=min_resource, reduction_factor=reduction_factor
    )


def median(warmup: int, startup: int) -> PrunerFactory:
    return lambda _max_epochs: optuna.pruners.MedianPruner(
        n_startup_trials=startup, n_warmup_steps=warmup
    )


def percentile(percent: int, warmup: int, startup: int) -> PrunerFactory:
    return lambda _max_epochs: optuna.pruners.PercentilePruner(
        percent, n_startup_trials=startup, n_warmup_steps=warmup
    )


def patient_median(warmup: int, startup: int, patience: int) -> PrunerFactory:
    def build(_max_epochs: int) -> optuna.pruners.BasePruner:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.pruners.PatientPruner(
                optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup),
                patience=patience,
            )

    return build


def _product(name: str) -> PrunerFactory:
    return lambda max_epochs: make_pruner(name, max_epochs)


# name -> (pattern, factory from the pattern's integers, description)
_PRUNERS: list[tuple[str, Callable[..., PrunerFactory], str]] = [
    (r"today", lambda: hyperband(2, 3), "the default until 2026-11-30: Hyperband from epoch 2"),
    (r"default", lambda: _product(DEFAULT_PRUNER), "the product's default --pruner"),
    (r"median", lambda: _product("median"), "the product's --pruner median"),
    (r"hyperband", lambda: _product("hyperband"), "the product's --pruner hyperband"),
    (r"none", lambda: _product("none"), "the product's --pruner none: no pruning"),
    (r"hb-(\d+)-(\d+)", hyperband, "HyperbandPruner(min_resource, max_epochs, factor)"),
    (r"sha-(\d+)-(\d+)", halving, "SuccessiveHalvingPruner(min_resource, factor)"),
    (r"median-w(\d+)-s(\d+)", median, "MedianPruner(n_warmup_steps, n_startup_trials)"),
    (
        r"pct(\d+)-w(\d+)-s(\d+)",
        percentile,
        "PercentilePruner(percentile, n_warmup_steps, n_startup_trials)",
    ),
    (
        r"patient-w(\d+)-s(\d+)-p(\d+)",
        patient_median,
        "PatientPruner(MedianPruner(warm-up, start-up), patience)",
    ),
]

# The candidates `compare` runs when none are named.
DEFAULT_CANDIDATES = (
    "today",
    "default",
    "none",
    "today-tpe5",
    "today-tpe20",
    "hb-3-3",
    "hb-4-3",
    "hb-5-3",
    "hb-3-2",
    "hb-4-2",
    "hb-5-2",
    "sha-4-3",
    "median-w3-s5",
    "median-w5-s5",
    "median-w5-s10",
    "patient-w3-s5-p2",
    "patient-w5-s5-p2",
    "none-tpe5",
    "none-tpe20",
)


def candidate(name: str) -> Candidate:
    """The candidate a name describes: a pruner (today, default, median, hyperband, none,
    hb-MIN-FACTOR, sha-MIN-FACTOR, median-wWARMUP-sSTARTUP, patient-wWARMUP-sSTARTUP-pPATIENCE,
    pctP-wWARMUP-sSTARTUP), optionally followed by -tpeN for N random start-up trials of TPE
    (the product's: 10)."""
    match = re.fullmatch(r"(.+?)(?:-tpe(\d+))?", name)
    pruner_name, startup = match.group(1), match.group(2)
    for pattern, factory, description in _PRUNERS:
        found = re.fullmatch(pattern, pruner_name)
        if found:
            pruner = factory(*(int(g) for g in found.groups()))
            return Candidate(name, pruner, int(startup) if startup else None, description)
    raise ValueError(
        f"unknown candidate {name!r}: use today, default, median, hyperband, none, "
        "hb-MIN-FACTOR, sha-MIN-FACTOR, median-wWARMUP-sSTARTUP, "
        "patient-wWARMUP-sSTARTUP-pPATIENCE or pctP-wWARMUP-sSTARTUP, optionally with -tpeN"
    )
