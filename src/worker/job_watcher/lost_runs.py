"""The runs lost with a worker: one read of running/ as it was just before it left.

A worker's ``workers/<id>`` key and its runs' ``running/`` keys share its session lease
(``worker/claims.py``). When the lease ends, expired (the worker died or was cut off)
or revoked (a graceful stop, a fence), etcd deletes every key on it in one revision r.
So a survivor that sees ``workers/<id>`` deleted at r learns which runs went with it by
reading ``running/`` as it was at r − 1 (etcd's MVCC keeps the past until a compaction)
and keeping the keys on that worker's lease: each one's value there is its last state
(claimed or started). No run's deletion is watched, so a fire's release costs the fleet
no watch event, however many workers there are (issue 14, DESIGN §6).

It is the same set the earlier design found by pairing each run's deletion with its
worker's at one revision, and no more:
- the lease is the one the worker's key was last put with (the workers/ mirror saw
  every put before the deletion); the keys on it at r − 1 went at r iff the lease ended
  then. A worker key deleted by hand, its lease still alive, took no run with it: when
  the read finds runs, the lease is asked for (gone: they are lost; alive: nothing is);
- a graceful stop deletes the keys of the runs it recorded before it revokes its
  lease, so only those it left ``claimed`` for another worker are found;
- our own runs are never reported (this worker is not gone), nor unreadable values.

When it cannot be told: the history at r − 1 is compacted (the deletion reached us
after a compaction had passed it: a listener held up for longer than etcd keeps
history), or etcd did not answer for ``LOST_READ_S``. Then one warning says so, with
the count the worker last published, and nothing is reported. Reading ``running/`` now
instead would not help: every key on the lease went at r, so the present holds none.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio

from cluster.backoff import Backoff
from cluster.etcd import Etcd, EtcdError, EtcdUnavailable, KeyValue, LeaseExpired, WatchCompacted
from cluster.keyspace import Keyspace
from cluster.presence import PresenceDecodeError, RunningInfo

log = logging.getLogger(__name__)

T = TypeVar("T")

LOST_READ_S = 10.0  # how long the read (and the lease check) may be retried
RETRY_S, RETRY_MAX_S = 0.1, 2.0


class LostRuns:
    """Finds the runs that left with a worker (module doc); counts what it could tell."""

    def __init__(self, etcd: Etcd | None, keyspace: Keyspace, worker_id: str, *,
                 within_s: float = LOST_READ_S) -> None:
        """``etcd`` None: a listener without etcd (unit tests) finds nothing."""
        self._etcd = etcd
        self._ks = keyspace
        self._worker_id = worker_id
        self._within_s = within_s
        self.reads = 0  # reads of running/ at a worker's departure
        self.untold = 0  # departures whose runs could not be told (compacted, no answer)

    async def left(self, worker_id: str, lease_id: int, revision: int,
                   published: int | None = None) -> list[RunningInfo]:
        """The runs of ``worker_id`` that went with its key, deleted at ``revision``
        from ``lease_id``; ``published``: the running count it last published (for
        the warning when they cannot be told)."""
        if self._etcd is None or worker_id == self._worker_id or not lease_id:
            return []  # ours, or a key on no lease: deleted by hand, it took nothing
        try:
            with trio.fail_after(self._within_s):
                return await self._lost(self._etcd, worker_id, lease_id, revision)
        except (WatchCompacted, trio.TooSlowError, EtcdError) as exc:
            self.untold += 1
            said = f"{published} runs" if published is not None else "its runs"
            log.warning("worker %r left at revision %d; whether any of %s (its last count) "
                        "was lost cannot be told: %s", worker_id, revision, said,
                        _why(exc, self._within_s))
            return []

    async def _lost(self, etcd: Etcd, worker_id: str, lease_id: int,
                    revision: int) -> list[RunningInfo]:
        prefix = self._ks.running_prefix()
        snapshot = await _retried(lambda: etcd.get_prefix(prefix, revision=revision - 1))
        self.reads += 1
        runs = [info for kv in snapshot.kvs if kv.lease_id == lease_id
                and (info := self._run(kv)) is not None and info.worker_id == worker_id]
        if runs and await _retried(lambda: _lives(etcd, lease_id)):
            log.warning("worker key of %r deleted while its lease %#x lives: its %d runs "
                        "go on", worker_id, lease_id, len(runs))
            return []
        return runs

    def _run(self, kv: KeyValue) -> RunningInfo | None:
        if self._ks.parse_running(kv.key) is None:
            log.warning("ignoring %s: not a running key", kv.key)
            return None
        try:
            return RunningInfo.from_bytes(kv.value)
        except PresenceDecodeError as err:
            log.warning("ignoring %s: %s", kv.key, err)
            return None


async def _lives(etcd: Etcd, lease_id: int) -> bool:
    try:
        await etcd.lease_ttl(lease_id)
    except LeaseExpired:
        return False
    return True


async def _retried(call: Callable[[], Awaitable[T]]) -> T:
    """``call()`` again while etcd is unreachable; the caller's deadline bounds it."""
    backoff = Backoff(RETRY_S, RETRY_MAX_S)
    while True:
        try:
            return await call()
        except EtcdUnavailable as exc:
            delay_s = backoff.failed()
            log.info("lost runs: %s; retrying in %.1f s", exc, delay_s)
            await trio.sleep(delay_s)


def _why(exc: BaseException, within_s: float) -> str:
    if isinstance(exc, WatchCompacted):
        return "etcd's history before it is compacted"
    if isinstance(exc, trio.TooSlowError):
        return f"etcd did not answer within {within_s:g} s"
    return str(exc)
