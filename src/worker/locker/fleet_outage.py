"""One start for an etcd quorum outage, the same on every worker, so that its catch-up
claims share one outage key.

Each worker's ``QuorumWatch`` sees the leader gone at its own instant: its polls are
``QUORUM_POLL_S`` apart and a Status call takes its time. The catch-up after the
outage (``Scheduler._after_outage``) names the outage by its start
(``worker.outages``: ``lock/<name>/<ms>.catchup``), so with each worker's own start the
keys differ. Each worker then ran its own "most recent" fire of the outage. When two
workers heard quorum back in different seconds, an every-second job with ``catchUp:
last`` had two catch-up runs (seen once in the quorum-loss e2e, on a loaded machine).

So the first worker back writes its start to ``outages/quorum`` (``Keyspace``), and a
worker back later takes that start instead of its own when that record is of the same
outage. That holds when the record's outage ended, by its writer's clock, no earlier
than this one began, less ``max_clock_skew_s``. Two outages are two different spells
without a leader, each at least ``LOST_AFTER_S`` long. An older record is replaced by
compare-and-set, so two workers back at once agree on whichever wrote first.

Mistaking an older outage for this one (one that ended within the skew of this one's
start) costs nothing worse than a catch-up set that starts earlier: the fires between
the two did run, and their locks make them taken, not run again (catchUp: last runs
the most recent anyway). If etcd fails the read or the write, the worker's own start is
used (logged): the catch-up goes on as before this record existed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from cluster.etcd import Compare, Etcd, EtcdError, KeyValue, Put

__all__ = ["QuorumOutage", "fleet_outage_start"]

log = logging.getLogger(__name__)

TRIES = 3  # compare-and-set rounds; each loses only to another worker back at once


@dataclass(frozen=True, slots=True)
class QuorumOutage:
    """The fleet's record of its last quorum outage: when it began, when it ended, by
    whose clock (ms since the epoch)."""

    since_ms: int
    back_ms: int
    worker: str

    def to_bytes(self) -> bytes:
        return json.dumps({"since": self.since_ms, "back": self.back_ms,
                           "worker": self.worker}, separators=(",", ":")).encode()

    @classmethod
    def from_kv(cls, kv: KeyValue | None) -> QuorumOutage | None:
        """None for no record, or one this release cannot read (then it is replaced)."""
        if kv is None:
            return None
        try:
            data = json.loads(kv.value)
            return cls(int(data["since"]), int(data["back"]), str(data["worker"]))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("ignoring %s = %r: %s", kv.key, kv.value[:80], exc)
            return None

    def same_outage(self, since_ms: int, skew_ms: int) -> bool:
        """Is an outage that began at ``since_ms`` (this worker's clock) this one?"""
        return self.back_ms + skew_ms >= since_ms


async def fleet_outage_start(etcd: Etcd, key: str, mine: QuorumOutage, *,
                             skew_ms: int) -> int:
    """When the outage began, as the first worker back saw it (``mine`` if this worker
    is the first)."""
    try:
        for _ in range(TRIES):
            kv = await etcd.get(key)
            seen = QuorumOutage.from_kv(kv)
            if seen is not None and seen.same_outage(mine.since_ms, skew_ms):
                return seen.since_ms
            put = Put(key, mine.to_bytes())
            if (await etcd.txn([Compare.unchanged(key, kv)], [put])).succeeded:
                return mine.since_ms
        log.warning("%s: %d workers wrote it meanwhile; catching up from this worker's "
                    "own start of the outage", key, TRIES)
    except EtcdError as exc:
        log.warning("%s: not read or written (%s); catching up from this worker's own "
                    "start of the outage", key, exc)
    return mine.since_ms
