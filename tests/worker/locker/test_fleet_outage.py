"""The fleet's one start of a quorum outage, against real etcd: the first worker back
writes its start, the others take it; the next outage replaces it; two workers back at
once agree; a broken record or an etcd that fails leaves each worker its own start."""

from __future__ import annotations

import trio

from cluster.etcd import EtcdUnavailable
from cluster.keyspace import Keyspace
from worker.locker.fleet_outage import QuorumOutage, fleet_outage_start

SKEW_MS = 1000
T0 = 1_700_000_000_000


async def start(etcd, ks: Keyspace, since_ms: int, back_ms: int, worker: str) -> int:
    return await fleet_outage_start(etcd, ks.quorum_outage, QuorumOutage(since_ms, back_ms, worker),
                                    skew_ms=SKEW_MS)


async def test_the_first_worker_back_names_the_start_for_the_others(etcd, etcd_prefix):
    ks = Keyspace(etcd_prefix)
    assert await start(etcd, ks, T0 + 300, T0 + 20_000, "w0") == T0 + 300
    # w1 saw the leader gone 400 ms later and heard it back 500 ms later: same outage.
    assert await start(etcd, ks, T0 + 700, T0 + 20_500, "w1") == T0 + 300
    # w2 saw it earlier than w0: still w0's, which every claim so far was keyed on.
    assert await start(etcd, ks, T0 + 100, T0 + 21_000, "w2") == T0 + 300
    record = QuorumOutage.from_kv(await etcd.get(ks.quorum_outage))
    assert record == QuorumOutage(T0 + 300, T0 + 20_000, "w0")


async def test_a_later_outage_replaces_the_record(etcd, etcd_prefix):
    ks = Keyspace(etcd_prefix)
    await start(etcd, ks, T0, T0 + 20_000, "w0")
    later = T0 + 20_000 + SKEW_MS + 1  # began after the first ended, beyond the skew
    assert await start(etcd, ks, later, later + 5_000, "w1") == later
    assert await start(etcd, ks, later + 200, later + 5_300, "w0") == later
    # Within the skew of the last end: taken for the same outage (the documented cost).
    assert await start(etcd, ks, later + 5_000 + SKEW_MS, later + 9_000, "w1") == later


async def test_workers_back_at_once_agree_on_one_start(etcd, etcd_prefix):
    ks = Keyspace(etcd_prefix)
    await start(etcd, ks, T0 - 100_000, T0 - 90_000, "old")  # an older outage's record
    got: dict[str, int] = {}

    async def back(worker: str, since_ms: int) -> None:
        got[worker] = await start(etcd, ks, since_ms, T0 + 20_000, worker)

    async with trio.open_nursery() as nursery:
        for w in range(6):
            nursery.start_soon(back, f"w{w}", T0 + 50 * w)
    assert len(set(got.values())) == 1 and got.popitem()[1] in {T0 + 50 * w for w in range(6)}


async def test_an_unreadable_record_is_replaced(etcd, etcd_prefix):
    ks = Keyspace(etcd_prefix)
    await etcd.put(ks.quorum_outage, b"not json")
    assert await start(etcd, ks, T0, T0 + 20_000, "w0") == T0
    assert await start(etcd, ks, T0 + 400, T0 + 20_400, "w1") == T0


class FailingEtcd:
    async def get(self, key, **_):
        raise EtcdUnavailable(f"get {key!r}", "no endpoint answered")


async def test_etcd_failing_leaves_the_workers_own_start(caplog):
    ks = Keyspace("/x/")
    assert await start(FailingEtcd(), ks, T0 + 123, T0 + 20_000, "w0") == T0 + 123
    assert "own start of the outage" in caplog.text
