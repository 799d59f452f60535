"""One fleet-wide view of each outage a job's catch-up runs for.

Workers come back from an outage at different instants, each reads the job's last
fire (``state/``) and works out the fires missed from there to its own now
(``worker.scheduler.catch_up``): their views differ in the newest time and so in how
many were missed. Without one view, two workers share out the fires of a ``catchUp:
all`` outage and their records disagree on how many were missed; with ``catchUp:
last`` both run "the most recent" fire, each its own.

The outage key ``lock/<name>/<after_ms>.catchup`` (``Keyspace.catch_up``; ``after_ms``
is the last fire before the outage) settles it. ``last``: the one run's claim creates
it, so one worker runs it. ``all``: the first catch-up claim a worker wins creates it,
naming that worker (``owner_value``); its later catch-up fires of the outage claim
only while the key still names it, and every other worker's are taken. Each catch-up
claim also moves ``state/``'s cursor to the newest fire of the set
(``Fire.last_missed_ms``), so a worker reading it while the set is being claimed
starts after the set, not in its middle.
"""

from __future__ import annotations

import json

from cluster.etcd import Compare, GetResult, Op, Put
from cluster.keyspace import Keyspace
from cluster.spec import CatchUp

from .messages import Fire

__all__ = ["OwnedOutages", "catch_up_key", "has_outage", "outage_claim", "outage_taken",
           "owns_each"]

# Outages this worker holds at once: jobs catching up, each a handful of keys.
OWNED_REMEMBERED = 1024


def has_outage(fire: Fire) -> bool:
    """Does this fire's claim carry an outage key? (A catch-up claimed again after its
    worker died is claimed by its lost key alone.)"""
    return fire.catch_up_after_ms is not None and not fire.recovers


def catch_up_key(ks: Keyspace, fire: Fire) -> str | None:
    """The outage key of a catch-up fire (``Keyspace.catch_up``), or None."""
    if not has_outage(fire):
        return None
    return ks.catch_up(fire.spec.name, fire.catch_up_after_ms)


def owns_each(fire: Fire) -> bool:
    """A ``catchUp: all`` fire: the outage key names the worker that runs all of it."""
    return fire.spec.catch_up is CatchUp.ALL


def owner_value(worker_id: str) -> bytes:
    return json.dumps({"worker": worker_id, "catchUp": "all"}, separators=(",", ":")).encode()


def outage_claim(key: str, fire: Fire, worker_id: str, lease: int, *, owned: bool,
                 value: bytes) -> tuple[list[Compare], list[Op]]:
    """The compares and ops a claim adds for the outage key. ``owned``: this worker
    created it already (``all``), so the key must still name it; else it must not
    exist, and the claim creates it (holding ``value`` for ``last``)."""
    if owns_each(fire) and owned:
        return [Compare.value(key, "==", owner_value(worker_id))], []
    put = owner_value(worker_id) if owns_each(fire) else value
    return [Compare.create_revision(key, "==", 0)], [Put(key, put, lease)]


def outage_taken(fire: Fire, probe: object, worker_id: str) -> bool | None:
    """From the failure branch's read of the outage key: does another worker hold the
    outage? None if the read has no answer."""
    if not isinstance(probe, GetResult):
        return None
    if not probe.kvs:
        return False
    return not (owns_each(fire) and probe.kvs[0].value == owner_value(worker_id))


class OwnedOutages:
    """The ``all`` outage keys this worker created: its later claims of the outage
    compare the key's value instead of creating it. Forgetting one costs a round trip
    (the create fails, the read shows the key is ours, the claim is tried again)."""

    def __init__(self) -> None:
        self._keys: set[str] = set()

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def add(self, key: str) -> None:
        if len(self._keys) >= OWNED_REMEMBERED:
            self._keys.clear()
        self._keys.add(key)
