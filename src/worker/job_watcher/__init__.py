"""The JobWatcher: watches etcd (jobs, triggers, kills, retries, workers) and tells the
others what changed, and which runs were lost with a worker that left.

``actor.py`` holds the actor (five ``cluster.mirror.PrefixMirror``s and their statistics),
``messages.py`` what it is sent (``JobWatcherMsg``); each prefix's listener turns what
etcd holds into messages: ``fleet.py`` (workers/; with ``lost_runs.py``, which reads the
runs a departed worker left: running/ at the revision before its key's deletion, never
watched), ``jobs.py`` (jobs/), ``run_requests.py`` (killer/, trigger/, retry/); they send
with ``Address.tell_or_log``. The map of the actors is in ``worker``.

Public names are re-exported lazily (``worker._lazy``): importing
``worker.job_watcher.messages`` does not import the actor. Who may import it:
``worker.app`` and ``worker.metrics`` (the actor and its statistics), other actors (its
messages only), tests.
"""

from __future__ import annotations

from worker._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    ".actor": ("JobWatcher", "JobWatcherStatistics"),
    ".lost_runs": ("LostRuns",),
    ".messages": ("JobWatcherMsg",),
})
