"""The Executor: starts, watches and kills the job processes it won; writes their run records.

``actor.py`` holds its handling, ``messages.py`` what it is sent (``ExecutorMsg``);
its parts, one idea each:

- how a run starts: ``launch`` (the steps, in order), ``start_at`` (the held bash),
  ``start_marks`` (the commit point in etcd), ``orphan`` (a stdlib-only script run by
  path, settling a run whose worker died) and ``orphan_access`` (its etcd access);
- who runs it: ``run_as`` (the account), ``drop`` (the change of user at the ``exec``);
- why it stops: ``active`` (first reason wins), ``early_kills`` (kills before their run);
- the process: ``process`` (its group: capture, timeout, kill), ``spawn`` (the child);
- what it ends in: ``record``, ``environment`` (what a job sees), ``releases`` (its keys
  given back), ``run_tally`` (its metrics).

The map of the actors is in ``worker``. ``worker.__main__`` and ``worker.app`` also use
``run_as``, ``orphan_access`` and ``start_marks`` (checks at start, wiring).

Public names are re-exported lazily (``worker._lazy``): importing
``worker.executor.messages`` does not import the actor. Who may import it: ``worker.app``
and ``worker.metrics`` (the actor and its statistics), other actors (its messages only),
tests.
"""

from __future__ import annotations

from worker._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    ".actor": ("Executor", "ExecutorStatistics"),
    ".messages": ("StartRun", "KillRun", "Fenced", "RunningCount", "ExecutorMsg"),
})
