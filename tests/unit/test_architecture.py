"""The package's wings and which way its imports run (docs/architecture.md): the core imports no
action and no admin module, the actions import no admin module and not each other, nothing but the
demo imports the oned stand-in, and no two modules import each other, even lazily."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every module of the two packages, with the project modules it imports anywhere (functions too)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        name = _module(path)
        found = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.level == 0, f"{name}: relative import of {node.module}"
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return {name: {imported for imported in found if imported in graph} for name, found in graph.items()}


GRAPH = _imports()


def _in(wing: str, module: str) -> bool:
    return module == wing or module.startswith(wing + ".")


@pytest.mark.parametrize("wing, forbidden", [
    ("one_gluster.core", ("one_gluster.datastore", "one_gluster.tm", "one_gluster.admin", "one_gluster.driver",
                          "onedsim")),
    ("one_gluster.datastore", ("one_gluster.tm", "one_gluster.admin", "one_gluster.driver", "onedsim")),
    ("one_gluster.tm", ("one_gluster.datastore", "one_gluster.admin", "one_gluster.driver", "onedsim")),
    ("one_gluster.driver", ("one_gluster.admin", "onedsim")),
    ("onedsim", ("one_gluster",)),
])
def test_imports_run_one_way(wing, forbidden):
    wrong = sorted(f"{module} imports {imported}" for module, imports in GRAPH.items() if _in(wing, module)
                   for imported in imports if any(_in(other, imported) for other in forbidden))
    assert wrong == []


def test_only_the_demo_uses_the_oned_stand_in():
    users = {module for module, imports in GRAPH.items() if _in("one_gluster", module)
             and any(_in("onedsim", imported) for imported in imports)}
    assert users == {"one_gluster.admin.demo"}


def test_no_circle():
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        assert module not in path, "import circle: " + " -> ".join(path[path.index(module):] + [module])
        if module not in done:
            for imported in sorted(GRAPH[module]):
                visit(imported, path + [module])
            done.add(module)

    for module in sorted(GRAPH):
        visit(module, [])
