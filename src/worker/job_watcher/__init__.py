"""The JobWatcher: watches etcd (jobs, triggers, kills, running runs, workers) and tells the
others what changed.

``actor.py`` holds its handling, ``messages.py`` what it is sent (``JobWatcherMsg``). The
map of the actors is in ``worker``.

Public names are re-exported lazily (``worker._lazy``): importing
``worker.job_watcher.messages`` does not import the actor. Who may import it:
``worker.app`` and ``worker.metrics`` (the actor and its statistics), other actors (its
messages only), tests.
"""

from __future__ import annotations

from worker._lazy import lazy_exports

__all__ = [
    "JobWatcher",
    "JobWatcherStatistics",
    "LostRunMatcher",
    "JobWatcherMsg",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "JobWatcher": ".actor",
    "JobWatcherStatistics": ".actor",
    "LostRunMatcher": ".actor",
    "JobWatcherMsg": ".messages",
})
