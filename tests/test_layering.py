"""The package layout holds: catdog knows nothing of the study, and calls only go down.

Every import counts, also one inside a function or under `if TYPE_CHECKING:`: a lazy import is
still a dependency, and a cycle hidden by one is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("catdog", "study")
# Folders of study/ that hold what a run uses; none of them may reach up into a run or a command.
BELOW_RUN = ("study.space", "study.data", "study.store", "study.results")
# Top-level modules every part of study/ may use: they import nothing else from study/.
LEAVES = ("study.settings", "study.attrs", "study.optuna_private")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, as dotted names, wherever in the file the import is."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from study.space import file` imports a module
                submodule = f"{node.module}.{alias.name}"
                names.add(submodule if submodule in MODULES else node.module)
    return names


GRAPH = {
    name: {imported for imported in _imports(path) if imported in MODULES}
    for name, path in MODULES.items()
}


def _folder(module: str) -> str:
    """study.run.worker -> study.run; study.settings -> study.settings; catdog.x -> catdog."""
    parts = module.split(".")
    if parts[0] == "catdog":
        return "catdog"
    if len(parts) > 2 or (module in MODULES and MODULES[module].name == "__init__.py"):
        return ".".join(parts[:2])
    return module


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path (first node repeated at the end), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_catdog_imports_neither_optuna_click_nor_the_study():
    for name, path in MODULES.items():
        if name.startswith("catdog"):
            wrong = {
                imported
                for imported in _imports(path)
                if imported.split(".")[0] in ("optuna", "optuna_dashboard", "click", "study")
            }
            assert not wrong, f"{name} imports {sorted(wrong)}"


def test_no_import_cycle_between_modules():
    cycle = _cycle(GRAPH)
    assert cycle is None, " -> ".join(cycle)


def test_no_import_cycle_between_folders():
    folders: dict[str, set[str]] = {}
    for module, imported in GRAPH.items():
        source = _folder(module)
        folders.setdefault(source, set()).update(
            _folder(target) for target in imported if _folder(target) != source
        )
    cycle = _cycle(folders)
    assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("folder", BELOW_RUN)
def test_what_a_run_uses_never_reaches_up_into_a_run_or_a_command(folder):
    for module, imported in GRAPH.items():
        if module == folder or module.startswith(folder + "."):
            upward = {m for m in imported if m.startswith(("study.run", "study.commands"))}
            assert not upward, f"{module} imports {sorted(upward)}"


@pytest.mark.parametrize("leaf", LEAVES)
def test_settings_attrs_and_optuna_private_import_nothing_else_from_the_study(leaf):
    inside = {m for m in GRAPH[leaf] if m.startswith("study")}
    assert not inside, f"{leaf} imports {sorted(inside)}"


def test_only_the_command_line_reaches_the_commands():
    for module, imported in GRAPH.items():
        if not module.startswith(("study.commands", "study.cli")):
            commands = {m for m in imported if m.startswith("study.commands")}
            assert not commands, f"{module} imports {sorted(commands)}"
