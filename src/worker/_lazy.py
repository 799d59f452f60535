"""Lazy re-exports for the actors' packages (PEP 562 ``__getattr__``).

``worker.<actor>`` re-exports its actor, statistics and messages, but must not import the
actor when only its ``messages`` is wanted: actors send to one another both ways (the
Scheduler to the Locker and back), so each imports the other's ``messages``; an eager
re-export would make that import load the other actor, which imports the first one's
``messages`` back: a circle. A lazy one imports ``actor.py`` on the first use of one of
its names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(
    package: str, modules: Mapping[str, tuple[str, ...]]
) -> tuple[Callable[[str], object], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``, from each module
    (``".actor"``) to the names it exports."""
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module, package), name)

    def __dir__() -> list[str]:
        return sorted(where)

    return __getattr__, __dir__, list(where)
