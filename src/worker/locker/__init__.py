"""The Locker: claims fires in etcd (who runs what), with placement among the live workers.

``actor.py`` holds its handling, ``messages.py`` what it is sent (``LockerMsg``); its
parts: ``placement`` (who claims first), ``claim_order`` (how long this worker waits,
by its rank, load and clock: ``fleet_clock``), ``transport`` (the claim transactions),
``claim_batch`` (their group commit), ``single_path`` (a fire claimed alone: forbid,
replace, retries), ``claim_grace`` (how long a failed claim is tried again),
``due_fires`` (the one heap of every fire's wait), ``lock_leases``, ``replace``
(concurrency ``replace``), ``quorum`` (whether etcd has a leader), ``statistics`` (what
it reports). The map of the actors is in ``worker``.

Public names are re-exported lazily (``worker._lazy``): importing
``worker.locker.messages`` does not import the actor. Who may import it: ``worker.app``
(the actor) and ``worker.metrics`` (its statistics), other actors (its messages only),
tests.
"""

from __future__ import annotations

from worker._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    ".actor": ("Locker",),
    ".statistics": ("LockerStatistics",),
    ".messages": ("Claim", "ClaimWindow", "ClaimLost", "WorkersChanged", "LockerMsg"),
})
