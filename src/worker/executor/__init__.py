"""The Executor: starts, watches and kills the job processes it won; writes their run records.

``actor.py`` holds its handling, ``messages.py`` what it is sent (``ExecutorMsg``);
its parts: ``drop``, ``early_kills``, ``orphan`` (a stdlib-only script run by path),
``orphan_access``, ``process``, ``run_as``, ``run_tally``, ``start_at``, ``start_marks``.
The map of the actors is in ``worker``. ``worker.__main__`` and ``worker.app`` also use
``run_as``, ``orphan_access`` and ``start_marks`` (checks at start, wiring).

Public names are re-exported lazily (``worker._lazy``): importing
``worker.executor.messages`` does not import the actor. Who may import it: ``worker.app``
and ``worker.metrics`` (the actor and its statistics), other actors (its messages only),
tests.
"""

from __future__ import annotations

from worker._lazy import lazy_exports

__all__ = [
    "Executor",
    "ExecutorStatistics",
    "StartRun",
    "KillRun",
    "Fenced",
    "RunningCount",
    "ExecutorMsg",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "Executor": ".actor",
    "ExecutorStatistics": ".actor",
    "StartRun": ".messages",
    "KillRun": ".messages",
    "Fenced": ".messages",
    "RunningCount": ".messages",
    "ExecutorMsg": ".messages",
})
