"""What a model file says about itself, in words: for `show`, `predict` and `export`.

A model file's header (catdog.modelfile) records what the model learned from and how well it
did; here it becomes the lines a user reads, the one-line warning for a model that learned the
synthetic shapes, and the JSON of `show --json` and `predict --format json`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catdog.config import TrainConfig
from catdog.modelfile import checksum_path, model_class_names, read_checksum, sha256_of
from study.attrs import TEST_ACCURACY_ATTR, accuracy_attr, is_synthetic, loss_attr
from study.results.labels import describe_config, number, percent

WIDTH = 99  # the terminal lines, like the code's
LABEL_WIDTH = 12  # "image size  64 px"


@dataclass(frozen=True)
class Checksum:
    """A model file's SHA-256 and the one `export` recorded beside it (MODEL.sha256), if any."""

    path: Path
    sha256: str
    recorded: str | None

    @property
    def matches(self) -> bool | None:
        """None when nothing was recorded to compare with."""
        return None if self.recorded is None else self.recorded == self.sha256

    def describe(self) -> str:
        """Whether it matches MODEL.sha256, e.g. 'matches best.safetensors.sha256'."""
        beside = checksum_path(self.path)
        if self.matches is None:
            return f"not checked: there is no {beside}"
        if self.matches:
            return f"matches {beside}"
        return f"does NOT match {beside}: the file was changed or damaged"


def checksum(path: Path) -> Checksum:
    return Checksum(Path(path), sha256_of(Path(path)), read_checksum(Path(path)))


def synthetic_warning(path: Path, info: Mapping[str, Any]) -> str | None:
    """One line for a model that learned the synthetic shapes, else None."""
    data = info.get("data")
    if not is_synthetic(data):
        return None
    # The description names the set: "SYNTHETIC shapes from storage/data/synthetic, 64 px".
    return f"warning: {path} learned {data}, not cats and dogs: its answers on photos mean nothing"


def card_lines(info: Mapping[str, Any], file: Checksum) -> list[str]:
    """What the model learned from, its size, classes, scores, recipe and origin, line by line."""
    data = info.get("data")
    metrics = info.get("metrics") or {}
    size = info.get("image_size")
    rows = [
        ("model file", str(file.path)),
        ("data", _data(data)),
        ("image size", f"{size} px: every image is squashed (not cropped) to {size} x {size}"),
        ("classes", ", ".join(model_class_names(info))),
    ]
    test, validation = _figures(metrics, "test"), _figures(metrics, "val")
    if test is not None:
        # Without a validation part (--val-fraction) the test set also ranked the trials.
        rows.append(("test set", test if validation else f"{test} (it also ranked the trials)"))
    if validation is not None:
        rows.append(("validation", validation))
    rows.append(("trained", _origin(info)))
    if "config" in info:
        rows.append(("config", _config(info["config"])))
    if isinstance(info.get("space"), Mapping):
        space = info["space"]
        rows.append(("space", f"{space.get('name', '?')} ({space.get('fingerprint', '?')})"))
    rows += [("SHA-256", file.sha256), ("check", file.describe())]
    indent = " " * LABEL_WIDTH
    return [
        textwrap.fill(
            value,
            WIDTH,
            initial_indent=f"{label:<{LABEL_WIDTH}}",
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
        for label, value in rows
    ]


def card_json(info: Mapping[str, Any], file: Checksum) -> dict[str, Any]:
    """The whole header, with the file's checks and whether it learned the synthetic shapes."""
    return {
        "path": str(file.path),
        "sha256": file.sha256,
        "sha256_recorded": file.recorded,
        "sha256_matches": file.matches,
        "synthetic": is_synthetic(info.get("data")),
        "catdog": dict(info),
    }


def model_summary(info: Mapping[str, Any], file: Checksum) -> dict[str, Any]:
    """What a table of predictions should carry about the model that made them."""
    return {
        "path": str(file.path),
        "sha256": file.sha256,
        "data": info.get("data"),
        "synthetic": is_synthetic(info.get("data")),
        "image_size": info.get("image_size"),
        "class_names": list(model_class_names(info)),
        TEST_ACCURACY_ATTR: (info.get("metrics") or {}).get(TEST_ACCURACY_ATTR),
        "study": info.get("study"),
        "trial": info.get("trial"),
    }


def _data(data: str | None) -> str:
    if not data:
        return "not recorded in the file"
    if is_synthetic(data):
        return f"{data} (not cats and dogs)"
    return data


def _figures(metrics: Mapping[str, Any], split: str) -> str | None:
    accuracy, loss = metrics.get(accuracy_attr(split)), metrics.get(loss_attr(split))
    if accuracy is None and loss is None:
        return None
    return f"accuracy {percent(accuracy)}, loss {number(loss)}"


def _origin(info: Mapping[str, Any]) -> str:
    """E.g. "trial 7 of study 'catdog', 12 epochs, seed 7, fp32"."""
    metrics = info.get("metrics") or {}
    names = [
        f"trial {info['trial']}" if "trial" in info else "",
        f"study {info['study']!r}" if "study" in info else "",
    ]
    parts = [
        " of ".join(name for name in names if name),
        f"{metrics['epochs']} epochs" if "epochs" in metrics else "",
        f"seed {info['seed']}" if "seed" in info else "",
        str(info.get("precision", "")),
    ]
    return ", ".join(part for part in parts if part) or "not recorded in the file"


def _config(values: Any) -> str:
    """The recipe as `describe_config` writes it; as stored when this version cannot read it."""
    try:
        return describe_config(TrainConfig.from_dict(dict(values)))
    except (TypeError, ValueError):
        return str(values)
