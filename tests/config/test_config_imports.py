"""The modules of cluster.config import one another in one order, with no circle.

A circle (once `_settings` <-> `_sources`, hidden by a lazy import inside a method)
means neither module can be read, or imported, on its own. Every import counts here,
lazy ones too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cluster.config

PACKAGE = Path(cluster.config.__file__).parent


def sibling_imports(path: Path) -> set[str]:
    """The private modules of the package that `path` imports (`from ._x import ...`,
    `from . import _x`), anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module)
            else:
                found.update(alias.name for alias in node.names)
    return found


def circle(graph: dict[str, set[str]]) -> set[str]:
    """The modules left when no more can be imported after those already imported:
    empty when there is no circle."""
    done: set[str] = set()
    while ready := {m for m in graph if m not in done and graph[m] <= done}:
        done |= ready
    return set(graph) - done


def test_the_private_modules_import_each_other_without_a_circle() -> None:
    graph = {p.stem: sibling_imports(p) for p in PACKAGE.glob("_*.py") if p.stem != "__init__"}
    assert {"_config", "_sources", "_table"} <= set(graph)
    assert set().union(*graph.values()) <= set(graph), "an import of a module that is not there"
    assert circle(graph) == set()


def test_a_lazy_import_inside_a_method_makes_a_circle(tmp_path: Path) -> None:
    (tmp_path / "_a.py").write_text("from ._b import g\n")
    (tmp_path / "_b.py").write_text("class B:\n    def f(self):\n        from ._a import h\n")
    graph = {p.stem: sibling_imports(p) for p in tmp_path.glob("_*.py")}
    assert circle(graph) == {"_a", "_b"}
