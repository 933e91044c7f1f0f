"""The space `--space` names: a built-in one or a TOML space file."""

from __future__ import annotations

from pathlib import Path

from study.settings import DEFAULT_MAX_EPOCHS
from study.space.builtin import extended_space, report_space
from study.space.dimensions import SearchSpace, SpaceError
from study.space.file import load_space_file


def resolve_space(spec: str, *, max_epochs: int = DEFAULT_MAX_EPOCHS) -> SearchSpace:
    """The space named by --space: report, extended, or a TOML space file."""
    if spec == "report":
        return report_space(max_epochs)
    if spec == "extended":
        return extended_space(max_epochs)
    if spec.endswith(".toml") or Path(spec).is_file():
        return load_space_file(Path(spec))
    raise SpaceError(f"unknown search space {spec!r}: use report, extended or a .toml file")
