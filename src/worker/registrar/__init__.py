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

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    ".actor": ("Registrar", "RegistrarStatistics"),
    ".messages": ("SessionChanged", "RegistrarMsg"),
})
