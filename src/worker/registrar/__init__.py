"""The Registrar: keeps the worker's session lease and presence in etcd; fences runs when it
is lost.

``actor.py`` holds its handling, ``messages.py`` what it is sent (``RegistrarMsg``). The
map of the actors is in ``worker``.

Public names are re-exported lazily (``worker._lazy``): importing
``worker.registrar.messages`` does not import the actor. Who may import it: ``worker.app``
and ``worker.metrics`` (the actor and its statistics), other actors (its messages only),
tests.
"""

from __future__ import annotations

from worker._lazy import lazy_exports

__all__ = [
    "Registrar",
    "RegistrarStatistics",
    "SessionChanged",
    "RegistrarMsg",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "Registrar": ".actor",
    "RegistrarStatistics": ".actor",
    "SessionChanged": ".messages",
    "RegistrarMsg": ".messages",
})
