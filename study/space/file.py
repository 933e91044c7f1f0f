"""Search spaces in a TOML file: read and check one, or write a space in the same format.

One table per dimension, named after the TrainConfig field it sets, in the order trials ask
for them (a condition names a dimension above it):

    [optimizer]
    kind = "categorical"
    choices = ["sgd", "adam"]

    [momentum]
    kind = "float"
    low = 0.0
    high = 0.99
    when = { optimizer = "sgd" }

A plain `name = value` line at the top of the file fixes a setting. Every mistake in a file is
reported, one line each, before anything trains.
"""

from __future__ import annotations

import json
import tomllib
import typing
from pathlib import Path
from typing import Any

from catdog.config import TrainConfig
from study.space.dimensions import (
    CONFIG_FIELDS,
    DIMENSION_KINDS,
    Dimension,
    SearchSpace,
    SpaceError,
)

FIELD_TYPES: dict[str, type] = typing.get_type_hints(TrainConfig)
KEYS_BY_KIND = {
    "categorical": {"choices"},
    "int": {"low", "high"},
    "float": {"low", "high"},
    "log": {"low", "high", "or_zero"},
    "fixed": {"value"},
}
ALL_KEYS = ("kind", "low", "high", "choices", "value", "when", "or_zero")
# Judge one value at a time: give the settings it is checked against room to accept it
# (nesterov needs momentum > 0, warm-up needs more epochs).
PROBE_BASE = {"momentum": 0.9, "epochs": 10_000}
TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def load_space_file(path: Path) -> SearchSpace:
    """The space a TOML file describes, named after the file; SpaceError lists every mistake."""
    path = Path(path)
    if not path.is_file():
        raise SpaceError(f"search space file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpaceError(f"{path}: cannot read it ({error})") from None
    return parse_space(text, str(path))


def parse_space(text: str, name: str) -> SearchSpace:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpaceError(f"{name}: not valid TOML: {error}") from None
    problems: list[str] = []
    dimensions: list[Dimension] = []
    for key, entry in document.items():
        dimension = _dimension(key, entry, dimensions, document, problems)
        if dimension is not None:
            dimensions.append(dimension)
    if not document:
        problems.append("defines no dimensions")
    if problems:
        raise SpaceError("\n".join(f"{name}: {problem}" for problem in problems))
    return SearchSpace(name, tuple(dimensions))


def _dimension(
    name: str,
    entry: Any,
    above: list[Dimension],
    document: dict[str, Any],
    problems: list[str],
) -> Dimension | None:
    """One dimension from its table (or plain value), or None after noting its problems."""
    if name not in CONFIG_FIELDS:
        problems.append(
            f"unknown dimension {name!r}: not a training setting "
            f"(known: {', '.join(CONFIG_FIELDS)})"
        )
        return None
    if not isinstance(entry, dict):
        entry = {"kind": "fixed", "value": entry}
    before = len(problems)

    def problem(text: str) -> None:
        problems.append(f"[{name}] {text}")

    for key in entry:
        if key not in ALL_KEYS:
            hint = ""
            if key in CONFIG_FIELDS:
                hint = (
                    ": a plain `name = value` line after a [table] belongs to that table; "
                    "put fixed settings at the top of the file"
                )
            problem(f"unknown key {key!r} (expected {', '.join(ALL_KEYS)}){hint}")
    kind = entry.get("kind")
    if kind not in DIMENSION_KINDS:
        problem(f"kind must be one of {', '.join(DIMENSION_KINDS)}, not {kind!r}")
        return None
    for key in set(entry) & set(ALL_KEYS) - KEYS_BY_KIND[kind] - {"kind", "when"}:
        problem(f"{key!r} does not apply to kind {kind}")
    for key in sorted(KEYS_BY_KIND[kind] - {"or_zero"} - set(entry)):
        problem(f"kind {kind} needs {key!r}")
    if len(problems) > before:
        return None

    settings: dict[str, Any] = {}
    if kind == "fixed":
        settings["value"] = _setting_value(name, entry["value"], problem)
    elif kind == "categorical":
        settings["choices"] = _choices(name, entry["choices"], problem)
    else:
        settings.update(_range(name, kind, entry, problem))
    when = _conditions(name, entry.get("when", {}), above, document, problem)
    if len(problems) > before:
        return None
    return Dimension(name, kind, when=when, **settings)


def _setting_value(name: str, value: Any, problem, *, probe: bool = True) -> Any:
    """`value` as the setting's type (ints become floats for float settings), if it fits."""
    wanted = FIELD_TYPES[name]
    fits = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: _is_number(value),
        str: isinstance(value, str),
    }[wanted]
    if not fits:
        problem(f"{name} takes {TYPE_NAMES[wanted]}, not {_toml_value(value)}")
        return None
    value = wanted(value)
    try:
        if probe:
            TrainConfig.from_dict({**PROBE_BASE, name: value})
    except ValueError as error:
        problem(f"{value!r} is not a possible {name}: {error}")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _choices(name: str, choices: Any, problem) -> tuple[Any, ...]:
    if not isinstance(choices, list) or not choices:
        problem("choices must be a non-empty list")
        return ()
    values = tuple(_setting_value(name, choice, problem) for choice in choices)
    if len(set(values)) < len(values):
        problem("choices repeat a value")
    return values


def _range(name: str, kind: str, entry: dict[str, Any], problem) -> dict[str, Any]:
    wanted = FIELD_TYPES[name]
    if kind == "int" and wanted is not int:
        problem(f"kind int needs an integer setting; {name} takes {TYPE_NAMES[wanted]}")
        return {}
    if kind in ("float", "log") and wanted is not float:
        problem(f"kind {kind} needs a number setting; {name} takes {TYPE_NAMES[wanted]}")
        return {}
    log_from_zero = kind == "log" and _is_number(entry["low"]) and entry["low"] <= 0
    if log_from_zero:
        problem(f"a log range must start above 0, not at {entry['low']!r} (or_zero adds 0)")
    low = _setting_value(name, entry["low"], problem, probe=not log_from_zero)
    high = _setting_value(name, entry["high"], problem)
    or_zero = entry.get("or_zero", False)
    if not isinstance(or_zero, bool):
        problem(f"or_zero must be true or false, not {or_zero!r}")
    if low is None or high is None:
        return {}
    if low > high:
        problem(f"empty range: low {low!r} is above high {high!r}")
    elif low == high:
        problem(f'range [{low!r}, {high!r}] holds one value: use kind = "fixed"')
    return {"low": low, "high": high, "or_zero": or_zero is True}


def _conditions(
    name: str, when: Any, above: list[Dimension], document: dict[str, Any], problem
) -> dict[str, tuple[Any, ...]]:
    """`when = { dimension = value or [values] }`, each naming a dimension above this one."""
    if not isinstance(when, dict):
        problem('when must be a table, e.g. when = { optimizer = "sgd" }')
        return {}
    known = {d.name: d for d in above}
    conditions = {}
    for other, allowed in when.items():
        if other not in known:
            where = "not a dimension"
            if other == name:
                where = "this dimension itself"
            elif other in document:
                where = "below it: move it above"
            problem(f"condition on {other!r}, which is {where}")
            continue
        values = tuple(allowed) if isinstance(allowed, list) else (allowed,)
        dimension = known[other]
        if dimension.kind in ("float", "log"):
            problem(f"condition on {other!r}: only categorical, int or fixed dimensions")
            continue
        never = [v for v in values if not dimension.can_take(v)]
        if never or not values:
            problem(f"condition {other} = {allowed!r} can never hold: {dimension.describe()}")
            continue
        conditions[other] = values
    return conditions


def space_to_toml(space: SearchSpace) -> str:
    """The space as a file `load_space_file` reads back to the same dimensions."""
    lines = [
        f"# search space {space.name} (fingerprint {space.fingerprint()})",
        "# catdog-study optimize --space FILE.toml reads this format.",
    ]
    for dimension in space.dimensions:
        entry = dimension.to_dict()
        lines += ["", f"[{entry.pop('name')}]"]
        for key, value in entry.items():
            if key == "when":
                conditions = ", ".join(
                    f"{other} = {_toml_value(allowed[0] if len(allowed) == 1 else allowed)}"
                    for other, allowed in value.items()
                )
                lines.append(f"when = {{ {conditions} }}")
            else:
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # 1e-06, 0.3, 128: all valid TOML numbers
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)  # a TOML basic string
