"""Whether this worker's run records have somewhere to go: the spill directory's room.

While the run store is down the LogSink keeps records in memory and, beyond its bound,
appends them to the spill file. When the disk refuses that append (full: ENOSPC,
EDQUOT; or any other I/O error) the records stay in memory, and every new fire this
worker ran would add one more record with nowhere safe to go. So the worker stops
taking new work until the spill file can grow again or the store takes the records:

- the **LogSink** owns the state, the only one that changes it: ``refused`` when an
  append fails, ``has_room`` when one succeeds, or when the store took a batch and
  memory is back within its bound (nothing needs the spill any more);
- the **Locker** reads ``full`` before each claim: while full it claims no new fire
  and records no skip (``claims_total{result="spill_full"}``); fires already claimed
  run, and their records are kept (``worker.log_sink.actor``, "Disk full");
- the **metrics** show it (``scheduler_worker_spill_full``), ``/healthz`` answers 503
  with ``spill: disk full`` (``problems``), and the **Registrar** publishes the same
  line in the worker's registration, so the master's ``/api/v1/workers`` and
  ``/healthz`` show it too.

One log line per change of state (WARNING), never one per failed append or per fire.

Why a shared object and not a message: the state must outlive any incarnation of its
readers and of its owner (a Locker restarted by its supervisor must not claim while
the disk is still full), and the claim path reads it for nothing. It is made once per
worker tree (``worker.app``) and used only in the trio thread.
"""

from __future__ import annotations

import errno
import logging

__all__ = ["DISK_FULL", "SpillRoom"]

log = logging.getLogger(__name__)

DISK_FULL = "disk full"
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def _describe(exc: BaseException) -> str:
    """``disk full`` for ENOSPC/EDQUOT (an OSError's, or a SpillIOError's, or its
    cause's); else the error itself."""
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "errno", None) in _FULL_ERRNOS:
            return DISK_FULL
        seen = seen.__cause__
    return str(exc)


class SpillRoom:
    """Full or not, and why; changed by the LogSink only (module doc)."""

    def __init__(self) -> None:
        self._problem: str | None = None  # None: there is room
        self.times_full = 0  # changes to full, since the worker started

    @property
    def full(self) -> bool:
        """The last spill append failed and the records have not found a place since."""
        return self._problem is not None

    def problems(self) -> tuple[str, ...]:
        """The worker's health lines about its spill: ``("spill: disk full",)`` or ()."""
        return () if self._problem is None else (f"spill: {self._problem}",)

    def refused(self, exc: BaseException, kept: int) -> bool:
        """A spill append failed with ``exc``; ``kept`` records stay in memory.

        Returns True if this changed the state (then it was logged), False if the
        spill was full already for the same reason (the caller may log at DEBUG).
        """
        problem = _describe(exc)
        if problem == self._problem:
            return False
        if self._problem is None:
            self.times_full += 1
        self._problem = problem
        said = f"{problem} ({exc})" if problem == DISK_FULL else problem
        log.warning("spill: %s: %d run records kept in memory; claiming no new fire until "
                    "the spill file can grow or the run store is back", said, kept)
        return True

    def has_room(self, why: str) -> None:
        """The records found a place again (``why`` says which); logged if it was full."""
        if self._problem is None:
            return
        log.warning("spill: no longer full (%s); claiming fires again", why)
        self._problem = None
