"""Keys and transactions through the adapter, against the shared etcd."""

from __future__ import annotations

import pytest
import trio

from cluster.etcd import (
    Compare,
    Delete,
    DeleteResult,
    Etcd,
    Get,
    GetResult,
    Put,
    PutResult,
    open_etcd,
)


async def test_put_get_delete_round_trip(etcd, etcd_prefix):
    key = etcd_prefix + "a"
    assert await etcd.get(key) is None
    revision = await etcd.put(key, "one")
    kv = await etcd.get(key)
    assert (kv.key, kv.value, kv.mod_revision, kv.version) == (key, b"one", revision, 1)
    assert await etcd.put(key, b"two") > revision
    assert (await etcd.get(key)).version == 2
    assert await etcd.delete(key) is True
    assert await etcd.delete(key) is False
    assert await etcd.get(key) is None


async def test_get_prefix_is_sorted_and_carries_the_read_revision(etcd, etcd_prefix):
    for name in ("b", "a", "c"):
        last = await etcd.put(etcd_prefix + name, name)
    await etcd.put(etcd_prefix[:-1] + "x", "outside")  # shares the text, not the prefix
    kvs, revision = await etcd.get_prefix(etcd_prefix)
    assert [kv.key for kv in kvs] == [etcd_prefix + n for n in "abc"]
    assert revision >= last
    assert await etcd.delete_prefix(etcd_prefix) == 3
    assert (await etcd.get_prefix(etcd_prefix)).kvs == ()
    await etcd.delete(etcd_prefix[:-1] + "x")


async def test_stamp_prefix_changes_with_every_put_and_deletion_under_it(etcd, etcd_prefix):
    assert (await etcd.stamp_prefix(etcd_prefix))[:2] == (0, 0)
    first = await etcd.put(etcd_prefix + "b", "1")
    newest = await etcd.put(etcd_prefix + "a", "1")
    await etcd.put(etcd_prefix[:-1] + "x", "outside")  # shares the text, not the prefix
    stamp = await etcd.stamp_prefix(etcd_prefix)
    assert (stamp.count, stamp.newest) == (2, newest) and stamp.revision > newest
    again = await etcd.put(etcd_prefix + "b", "2")  # an update: the count stays, newest moves
    assert (await etcd.stamp_prefix(etcd_prefix))[:2] == (2, again) and again > first
    await etcd.delete(etcd_prefix + "a")  # a deletion alone: the count drops
    assert (await etcd.stamp_prefix(etcd_prefix))[:2] == (1, again)
    await etcd.delete_prefix(etcd_prefix)
    await etcd.delete(etcd_prefix[:-1] + "x")


async def test_delete_prefix_refuses_the_whole_keyspace(etcd):
    with pytest.raises(ValueError, match="whole keyspace"):
        await etcd.delete_prefix("")


async def test_txn_runs_the_branch_its_compares_choose(etcd, etcd_prefix):
    key, other = etcd_prefix + "k", etcd_prefix + "other"
    await etcd.put(other, "o")
    done = await etcd.txn([Compare.version(key, "==", 0)],
                          [Put(key, "v"), Delete(other), Get(key)], [Get(key)])
    assert done.succeeded
    assert done.responses[0] == PutResult() and done.responses[1] == DeleteResult(1)
    assert done.responses[2].kvs[0].value == b"v"
    assert done.revision == done.responses[2].kvs[0].mod_revision
    again = await etcd.txn([Compare.version(key, "==", 0)], [Put(key, "w")], [Get(key)])
    assert not again.succeeded and again.revision == done.revision
    assert again.responses == (GetResult(done.responses[2].kvs),)
    swapped = await etcd.txn([Compare.value(key, "==", b"v")], [Put(key, "w")])
    assert swapped.succeeded and (await etcd.get(key)).value == b"w"


async def test_try_lock_admits_exactly_one_of_twenty_claimants(etcd, etcd_prefix):
    lock = etcd_prefix + "lock/job/1700000000000"
    outcomes: dict[int, bool] = {}

    async def claim(worker: int) -> None:
        result = await etcd.txn([Compare.create_revision(lock, "==", 0)],
                                [Put(lock, f"worker-{worker}")], [Get(lock)])
        outcomes[worker] = result.succeeded
        if not result.succeeded:  # the loser sees who won
            assert result.responses[0].kvs[0].value.startswith(b"worker-")

    async with trio.open_nursery() as nursery:
        for worker in range(20):
            nursery.start_soon(claim, worker)
    winners = [w for w, won in outcomes.items() if won]
    assert len(outcomes) == 20 and len(winners) == 1
    assert (await etcd.get(lock)).value == f"worker-{winners[0]}".encode()


async def test_adapter_is_made_only_by_open_etcd_and_refuses_calls_once_closed(etcd_endpoint):
    with pytest.raises(TypeError, match="open_etcd"):
        Etcd()
    async with open_etcd([etcd_endpoint]) as etcd:
        await etcd.get("/any")
    with pytest.raises(trio.ClosedResourceError):
        await etcd.get("/any")


async def test_statistics_name_the_endpoint_that_answered(etcd, etcd_endpoint):
    await etcd.get("/any")
    stats = etcd.statistics()
    assert stats.preferred_endpoint == etcd_endpoint and stats.set_aside == ()
    assert stats.threads_busy == 0 and stats.max_threads == 16


async def test_leader_answered_at_is_when_the_last_call_a_quorum_answered_went_out(
        etcd, etcd_prefix):
    """What spares the quorum watch its Status polls (``worker/locker/quorum.py``)."""
    assert etcd.leader_answered_at is None  # a new client: nothing answered yet
    before = trio.current_time()
    await etcd.put(etcd_prefix + "k", "v")
    after = trio.current_time()
    assert before <= etcd.leader_answered_at <= after
    lease = await etcd.grant_lease(5)
    granted = etcd.leader_answered_at
    assert granted > after
    await etcd.lease_ttl(lease.id)  # a leader answers it alone, without its quorum
    assert etcd.leader_answered_at == granted
    await etcd.revoke_lease(lease.id)


async def test_a_call_nobody_answered_is_no_sign_of_a_leader():
    from cluster.etcd import EtcdUnavailable

    async with open_etcd(["127.0.0.1:1"], timeout_s=0.5) as nobody:
        with pytest.raises(EtcdUnavailable):
            await nobody.get("/nothing")
        assert nobody.leader_answered_at is None
