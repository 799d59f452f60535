"""The modules under src/ import one another in one order, with no circle.

A circle means a module cannot be imported, or read, on its own, and the order of
imports decides whether a name exists yet. Every import counts: lazy ones inside a
function, and the package ``__init__`` that importing a submodule runs first. (Only
``if TYPE_CHECKING:`` blocks do not: they never run.) A circle once hid in the config
package (``_settings`` <-> ``_sources``, through a lazy import inside a method).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported_names(tree: ast.AST, package: str) -> set[str]:
    """Dotted names the module imports (absolute), ``from X import y`` giving X and X.y."""
    found: set[str] = set()
    todo = [tree]
    while todo:
        node = todo.pop()
        if is_type_checking(node):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def with_parents(name: str) -> set[str]:
    """Importing ``a.b.c`` runs ``a``, ``a.b`` and ``a.b.c``."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules under ``root`` that must have run before it can finish. Its
    own packages are left out: they are running already when it runs (a package may
    import its own modules)."""
    paths = {module_name(root, p): p for p in root.rglob("*.py") if ".egg-info" not in str(p)}
    graph = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported = imported_names(ast.parse(path.read_text()), package)
        needed = set().union(set(), *map(with_parents, imported)) & set(paths)
        graph[name] = needed - with_parents(name)
    return graph


def circle(graph: dict[str, set[str]]) -> set[str]:
    """The modules left when no more can be imported after those already imported:
    empty when there is no circle."""
    done: set[str] = set()
    while ready := {m for m in graph if m not in done and graph[m] <= done}:
        done |= ready
    return set(graph) - done


def test_the_modules_under_src_import_each_other_without_a_circle() -> None:
    graph = import_graph(SRC)
    assert {"worker.app", "worker.mailboxes", "worker.executor.actor", "cluster.spec"} <= set(graph)
    assert "worker.executor.messages" in graph["worker.mailboxes"]
    assert circle(graph) == set()


def test_an_eager_re_export_through_a_package_makes_a_circle(tmp_path: Path) -> None:
    """The circle the actors' lazy re-exports avoid: a shared module imports an actor's
    messages, whose package ``__init__`` would import the actor, which imports the
    shared module."""
    (tmp_path / "pkg" / "actor").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "context.py").write_text("from pkg.actor.messages import Msg\n")
    (tmp_path / "pkg" / "actor" / "__init__.py").write_text("from .actor import Actor\n")
    (tmp_path / "pkg" / "actor" / "actor.py").write_text("from pkg.context import Ctx\n")
    (tmp_path / "pkg" / "actor" / "messages.py").write_text("Msg = int\n")
    assert circle(import_graph(tmp_path)) == {"pkg.context", "pkg.actor", "pkg.actor.actor"}
