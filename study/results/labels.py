"""How trials, settings and figures are written in the terminal, in tables, notes and plots."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from catdog.config import TrainConfig
from study.attrs import is_synthetic


def on_off(value: bool | None, missing: str = "?") -> str:
    """'on' or 'off' for a boolean setting such as shuffle; `missing` when it is not set."""
    return {True: "on", False: "off"}.get(value, missing)


def describe_config(config: TrainConfig) -> str:
    """E.g. 'adam lr=0.01 shuffle=on epochs=10', plus every setting off the report's recipe."""
    text = (
        f"{config.optimizer} lr={config.lr:.3g} shuffle={on_off(config.shuffle)} "
        f"epochs={config.epochs}"
    )
    # Other settings only where they differ from the report's recipe (--space extended).
    recipe = TrainConfig().to_dict()
    for name, value in config.to_dict().items():
        if name not in ("optimizer", "lr", "shuffle", "epochs") and value != recipe[name]:
            text += f" {name}={value:.3g}" if isinstance(value, float) else f" {name}={value}"
    return text


def describe_setting(params: Mapping[str, Any]) -> str:
    """E.g. 'adam lr 0.00296, shuffle on': a trial's report-space params, for figures."""
    lr = params.get("lr")
    optimizer = params.get("optimizer", "?")
    shuffle = on_off(params.get("shuffle"))
    return f"{optimizer} lr {lr:.3g}, shuffle {shuffle}" if lr is not None else str(dict(params))


def data_caption(data: str | None) -> str:
    """A caption for figures: says SYNTHETIC loudly when the data was the synthetic set."""
    if is_synthetic(data):
        return f"{data}: synthetic data, not cats and dogs"
    return f"data: {data}" if data else ""


def percent(fraction: float | None) -> str:
    """A fraction as '84.6 %', or '–' when there is none."""
    return "–" if fraction is None else f"{100 * fraction:.1f} %"


def number(value: float | None, digits: int = 4) -> str:
    """A loss as '0.3712', or '–' when there is none (or it is NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"
