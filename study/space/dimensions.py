"""Search spaces: which TrainConfig fields a study varies, over what ranges, under what conditions.

A space is data: a tuple of Dimensions, each naming a TrainConfig field. `SearchSpace.suggest`
asks an Optuna trial for every dimension whose condition holds, in order, and returns the values
(fixed ones included) from which `to_config` builds the TrainConfig the trial trains with.
`SearchSpace.params_for` goes the other way: the Optuna params that make a trial train with a
given config, which is how the report's runs and re-runs of earlier trials are queued.
The built-in spaces are in study/space/builtin.py, space files in study/space/file.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from catdog.config import TrainConfig
from catdog.errors import CatdogError

DIMENSION_KINDS = ("categorical", "int", "float", "log", "fixed")
CONFIG_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


class SpaceError(CatdogError, ValueError):
    """A search space that cannot be built or used as asked; one line per problem."""


@dataclass(frozen=True)
class Dimension:
    name: str  # a TrainConfig field
    kind: str  # one of DIMENSION_KINDS; "log" is a float sampled log-uniformly
    low: float | None = None  # int / float / log
    high: float | None = None
    choices: tuple[Any, ...] = ()  # categorical
    value: Any = None  # fixed
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # other dim -> allowed
    # log only: a log range cannot hold 0, so a categorical switch `use_<name>` picks between
    # 0 (none) and the range, the usual Optuna idiom for "weight decay, or none".
    or_zero: bool = False

    @property
    def switch(self) -> str:
        return f"use_{self.name}"

    def applies(self, values: Mapping[str, Any]) -> bool:
        """True when every condition names a dimension whose value is among the allowed ones."""
        return all(
            name in values and any(_same(values[name], a) for a in allowed)
            for name, allowed in self.when.items()
        )

    def distributions(self) -> dict[str, BaseDistribution]:
        """The Optuna parameters this dimension may set, by name."""
        found: dict[str, BaseDistribution] = {}
        if self.or_zero:
            found[self.switch] = CategoricalDistribution([True, False])
        if self.kind == "categorical":
            found[self.name] = CategoricalDistribution(list(self.choices))
        elif self.kind == "int":
            found[self.name] = IntDistribution(int(self.low), int(self.high))
        elif self.kind in ("float", "log"):
            found[self.name] = FloatDistribution(self.low, self.high, log=self.kind == "log")
        return found

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "fixed":
            return self.value
        if self.or_zero and not trial.suggest_categorical(self.switch, [True, False]):
            return 0.0
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        return trial.suggest_float(self.name, self.low, self.high, log=self.kind == "log")

    def can_take(self, value: Any) -> bool:
        """True when `suggest` can return `value`."""
        if self.kind == "fixed":
            return _same(value, self.value)
        if self.kind == "categorical":
            return any(_same(value, choice) for choice in self.choices)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.or_zero and value == 0:
            return True
        if self.kind == "int" and value != int(value):
            return False
        return self.low <= value <= self.high

    def params_for(self, value: Any) -> dict[str, Any]:
        """The Optuna params that make `suggest` return `value`, a value `can_take` accepts."""
        if self.kind == "fixed":
            return {}
        if self.or_zero:
            return {self.switch: False} if value == 0 else {self.switch: True, self.name: value}
        return {self.name: value}

    def to_dict(self) -> dict[str, Any]:
        """Only the fields that mean something for this kind, JSON-ready."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind in ("int", "float", "log"):
            out.update(low=self.low, high=self.high)
            if self.or_zero:  # only when set, so spaces without it keep their fingerprints
                out["or_zero"] = True
        elif self.kind == "categorical":
            out["choices"] = list(self.choices)
        else:
            out["value"] = self.value
        if self.when:
            out["when"] = {name: list(allowed) for name, allowed in self.when.items()}
        return out

    def describe(self) -> str:
        if self.kind == "fixed":
            text = f"{self.name} = {self.value!r}"
        elif self.kind == "categorical":
            text = f"{self.name} in {{{', '.join(repr(c) for c in self.choices)}}}"
        else:
            scale = {"int": "integer", "float": "uniform", "log": "log-uniform"}[self.kind]
            text = f"{self.name} {scale} in [{self.low:g}, {self.high:g}]"
            if self.or_zero:
                text += " or 0"
        if self.when:
            conditions = ", ".join(
                f"{name} in {{{', '.join(repr(a) for a in allowed)}}}"
                for name, allowed in self.when.items()
            )
            text += f"  (when {conditions})"
        return text


@dataclass(frozen=True)
class SearchSpace:
    name: str  # "report", "extended" or the TOML file it came from
    dimensions: tuple[Dimension, ...]

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Values of every applicable dimension for this trial, fixed ones included."""
        values: dict[str, Any] = {}
        for dimension in self.dimensions:
            if dimension.applies(values):
                values[dimension.name] = dimension.suggest(trial)
        return values

    @property
    def is_conditional(self) -> bool:
        """True when trials may differ in which Optuna parameters they have."""
        return any(d.when or d.or_zero for d in self.dimensions)

    @property
    def max_epochs(self) -> int:
        """The most epochs a trial of this space trains (the pruners' longest run)."""
        return self._largest("epochs")

    @property
    def max_batch_size(self) -> int:
        """The largest batch a trial of this space trains with (what `--fuse auto` measures)."""
        return self._largest("batch_size")

    def _largest(self, name: str) -> int:
        """The largest value of an int setting; the report's default where it is not searched."""
        found = [d for d in self.dimensions if d.name == name]
        if not found:
            return int(getattr(TrainConfig(), name))
        dim = found[0]
        if dim.kind == "fixed":
            return int(dim.value)
        return int(max(dim.choices) if dim.kind == "categorical" else dim.high)

    def params_for(self, config: TrainConfig) -> dict[str, Any]:
        """The Optuna params that make a trial of this space train with exactly `config`.

        Raises SpaceError with one line per setting the space cannot give that value:
        outside a range, not among the choices or the fixed value, or left at its default.
        """
        wanted, default = config.to_dict(), TrainConfig().to_dict()
        values: dict[str, Any] = {}
        params: dict[str, Any] = {}
        problems = []
        for dimension in self.dimensions:
            if not dimension.applies(values):
                continue
            value = wanted[dimension.name]
            if dimension.can_take(value):
                params.update(dimension.params_for(value))
            else:
                problems.append(f"{dimension.name} = {value!r} is outside {dimension.describe()}")
            values[dimension.name] = value
        for name, value in wanted.items():
            if name not in values and not _same(value, default[name]):
                problems.append(
                    f"{name} = {value!r}, but this space leaves {name} at {default[name]!r}"
                )
        if problems:
            raise SpaceError("\n".join(f"search space {self.name}: {p}" for p in problems))
        return params

    def incompatible_with(self, stored: Mapping[str, BaseDistribution]) -> list[str]:
        """Parameters whose distribution a study holding `stored` could not take.

        Optuna refuses, within one study, a parameter that changes kind (int, float,
        categorical), log scale, or categorical choices; ranges may change.
        """
        problems = []
        for dimension in self.dimensions:
            for name, distribution in dimension.distributions().items():
                if name not in stored:
                    continue
                try:
                    optuna.distributions.check_distribution_compatibility(
                        stored[name], distribution
                    )
                except ValueError:
                    problems.append(
                        f"{name} was {_describe_distribution(stored[name])} in earlier "
                        f"trials and would be {_describe_distribution(distribution)}"
                    )
        return problems

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dimensions": [d.to_dict() for d in self.dimensions]}

    def fingerprint(self) -> str:
        """Short hash of the dimensions (not the name): equal spaces have equal fingerprints."""
        canonical = json.dumps([d.to_dict() for d in self.dimensions], sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def describe(self) -> str:
        lines = [f"search space {self.name} ({self.fingerprint()}):"]
        lines += [f"  {d.describe()}" for d in self.dimensions]
        return "\n".join(lines)


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same kind: True is not 1, but 2 and 2.0 are the same number."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _describe_distribution(distribution: BaseDistribution) -> str:
    if isinstance(distribution, CategoricalDistribution):
        return f"categorical {{{', '.join(repr(c) for c in distribution.choices)}}}"
    scale = "log " if getattr(distribution, "log", False) else ""
    kind = "int" if isinstance(distribution, IntDistribution) else "float"
    return f"{scale}{kind} [{distribution.low:g}, {distribution.high:g}]"


def to_config(values: Mapping[str, Any]) -> TrainConfig:
    """The TrainConfig a trial trains with; fields no dimension set keep the report's defaults.

    Warm-up is capped at epochs - 1, so that a space can search warm-up and epochs
    independently; the trial's stored config holds the capped value it trained with.
    """
    values = dict(values)
    if "warmup_epochs" in values:
        epochs = values.get("epochs", TrainConfig().epochs)
        values["warmup_epochs"] = max(0, min(values["warmup_epochs"], epochs - 1))
    return TrainConfig.from_dict(values)
