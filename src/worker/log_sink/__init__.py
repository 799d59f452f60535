"""The LogSink: writes run records to the store in batches, spilling to disk while it is
down.

``actor.py`` holds its handling and its policy (when to write, replay or spill),
``messages.py`` what it is sent (``LogSinkMsg``); its parts: ``ledger`` (where each
record is until durable, and the waiting Flushes), ``store_writer`` (the run store:
opening it, writing a batch, its failures), ``spill`` (the files on local disk; also
checked by ``worker.__main__`` at start), ``fence`` (spilling at once while the worker
is fenced), ``statistics``. The map of the actors is in ``worker``.

Public names are re-exported lazily (``worker._lazy``): importing
``worker.log_sink.messages`` does not import the actor. Who may import it: ``worker.app``
and ``worker.metrics`` (the actor and its statistics), other actors (its messages only),
tests.
"""

from __future__ import annotations

from worker._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    ".actor": ("LogSink", "LogSinkStatistics"),
    ".messages": ("Write", "Flush", "LogSinkMsg"),
})
