"""The JobWatcher: watches etcd (jobs, triggers, kills, running runs, workers) and tells the
others what changed.

``actor.py`` holds the actor (five ``cluster.mirror.PrefixMirror``s and their statistics),
``messages.py`` what it is sent (``JobWatcherMsg``); each prefix's listener turns what
etcd holds into messages: ``fleet.py`` (workers/, running/; with ``lost_runs.py``, which
tells a lost run from an ended one), ``jobs.py`` (jobs/), ``run_requests.py`` (killer/,
trigger/); they send with ``Address.tell_or_log``. The map of the actors is in ``worker``.

Public names are re-exported lazily (``worker._lazy``): importing
``worker.job_watcher.messages`` does not import the actor. Who may import it:
``worker.app`` and ``worker.metrics`` (the actor and its statistics), other actors (its
messages only), tests.
"""

from __future__ import annotations

from worker._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    ".actor": ("JobWatcher", "JobWatcherStatistics"),
    ".lost_runs": ("LostRunMatcher",),
    ".messages": ("JobWatcherMsg",),
})
