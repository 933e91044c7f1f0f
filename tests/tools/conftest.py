"""The GPU tools of tools/ (not a package): imported from their files, run on the CPU."""

import importlib.util
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / "tools"


@pytest.fixture
def tool(monkeypatch):
    """tool("fixed_costs") -> tools/fixed_costs.py as a module (its siblings importable)."""

    def load(name: str):
        monkeypatch.syspath_prepend(str(TOOLS))
        spec = importlib.util.spec_from_file_location(f"tools_{name}", TOOLS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, spec.name, module)
        spec.loader.exec_module(module)
        return module

    return load
