"""The Scheduler: owns the plan: which job fires when; hands fires to the Locker, runs to the
Executor, records skips and retries.

``actor.py`` holds its handling, ``messages.py`` what it is sent (``SchedulerMsg``); its
parts: ``misfires``, ``outbox``, ``plan``, ``records`` (skipped and lost runs). The map
of the actors is in ``worker``.

Public names are re-exported lazily (``worker._lazy``): importing
``worker.scheduler.messages`` does not import the actor. Who may import it: ``worker.app``
and ``worker.metrics`` (the actor and its statistics), other actors (its messages only),
tests.
"""

from __future__ import annotations

from worker._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    ".actor": ("Scheduler", "SchedulerStatistics"),
    ".messages": (
        "JobsSnapshot", "JobSaved", "JobDeleted", "TriggerRequested", "Granted", "GrantedBatch",
        "Denied",
        "LostClaimed", "RunVanished", "RunEnded", "RETRYABLE", "SchedulerMsg",
    ),
})
