"""Search spaces: which TrainConfig fields a study varies, over what ranges, under what conditions.

A space is data: a tuple of Dimensions, each naming a TrainConfig field. `SearchSpace.suggest`
asks an Optuna trial for every dimension whose condition holds, in order, and returns the values
(fixed ones included) from which `to_config` builds the TrainConfig the trial trains with.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna

from catdog.config import TrainConfig

KINDS = ("categorical", "int", "float", "log", "fixed")
LR_RANGE = (1e-4, 0.3)  # log-uniform; holds the report's SGD 0.1 and Adam 0.01
DEFAULT_MAX_EPOCHS = 20
CONFIG_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


@dataclass(frozen=True)
class Dimension:
    name: str  # a TrainConfig field
    kind: str  # one of KINDS; "log" is a float sampled log-uniformly
    low: float | None = None  # int / float / log
    high: float | None = None
    choices: tuple[Any, ...] = ()  # categorical
    value: Any = None  # fixed
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # other dim -> allowed

    def applies(self, values: Mapping[str, Any]) -> bool:
        """True when every condition names a dimension whose value is among the allowed ones."""
        return all(
            name in values and values[name] in allowed for name, allowed in self.when.items()
        )

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "fixed":
            return self.value
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        return trial.suggest_float(self.name, self.low, self.high, log=self.kind == "log")

    def to_dict(self) -> dict[str, Any]:
        """Only the fields that mean something for this kind, JSON-ready."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind in ("int", "float", "log"):
            out.update(low=self.low, high=self.high)
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


def to_config(values: Mapping[str, Any]) -> TrainConfig:
    """The TrainConfig a trial trains with; fields no dimension set keep the report's defaults."""
    return TrainConfig.from_dict(dict(values))


def report_space(max_epochs: int = DEFAULT_MAX_EPOCHS) -> SearchSpace:
    """The report's four knobs: optimizer, learning rate, shuffle and number of epochs."""
    return SearchSpace(
        "report",
        (
            Dimension("optimizer", "categorical", choices=("sgd", "adam")),
            Dimension("lr", "log", low=LR_RANGE[0], high=LR_RANGE[1]),
            Dimension("shuffle", "categorical", choices=(True, False)),
            Dimension("epochs", "int", low=1, high=max_epochs),
        ),
    )


def resolve_space(spec: str, *, max_epochs: int = DEFAULT_MAX_EPOCHS) -> SearchSpace:
    """The space named by --space."""
    if spec == "report":
        return report_space(max_epochs)
    raise ValueError(f"unknown search space {spec!r}: use report")
