"""Means and spreads over replayed studies; nan (a study without that figure) is left out."""

from __future__ import annotations

import statistics
from collections.abc import Iterable


def mean_sd(values: Iterable[float]) -> tuple[float, float]:
    """Mean and standard deviation (0 for one value; nan, nan for none)."""
    kept = [v for v in values if v == v]  # drop nan
    if not kept:
        return float("nan"), float("nan")
    return statistics.fmean(kept), statistics.stdev(kept) if len(kept) > 1 else 0.0


def mean_se(values: Iterable[float]) -> tuple[float, float]:
    """Mean and its standard error: for paired differences over seeds."""
    kept = [v for v in values if v == v]
    mean, sd = mean_sd(kept)
    return mean, sd / len(kept) ** 0.5 if kept else float("nan")


def percentile(values: Iterable[float], q: float) -> float:
    """The value a fraction q of the way up the sorted values (no interpolation)."""
    kept = sorted(v for v in values if v == v)
    if not kept:
        return float("nan")
    return kept[min(len(kept) - 1, int(q * len(kept)))]
