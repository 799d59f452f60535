"""Watches against the shared etcd: order, history, cancellation."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from cluster.etcd import Delete, EventType, Put


async def take(events, n: int, timeout_s: float = 10.0) -> list:
    with trio.fail_after(timeout_s):
        return [await anext(events) for _ in range(n)]


async def test_watch_replays_history_from_the_start_revision_then_follows(etcd, etcd_prefix):
    first = await etcd.put(etcd_prefix + "a", "1")
    await etcd.put(etcd_prefix + "b", "2")
    await etcd.put(etcd_prefix[:-1] + "-outside", "x")  # not under the prefix
    async with etcd.watch_prefix(etcd_prefix, start_revision=first) as events:
        old = await take(events, 2)
        await etcd.delete(etcd_prefix + "a")
        new = await take(events, 1)
    await etcd.delete(etcd_prefix[:-1] + "-outside")
    assert [(e.type, e.key, e.value) for e in old + new] == [
        (EventType.PUT, etcd_prefix + "a", b"1"),
        (EventType.PUT, etcd_prefix + "b", b"2"),
        (EventType.DELETE, etcd_prefix + "a", b""),
    ]
    assert old[0].revision == first and old[0].revision < old[1].revision < new[0].revision


async def test_one_transaction_arrives_as_events_of_one_revision(etcd, etcd_prefix):
    _, revision = await etcd.get_prefix(etcd_prefix)
    async with etcd.watch_prefix(etcd_prefix, start_revision=revision + 1) as events:
        done = await etcd.txn([], [Put(etcd_prefix + "x", "1"), Put(etcd_prefix + "y", "2")])
        got = await take(events, 2)
    assert [e.key for e in got] == [etcd_prefix + "x", etcd_prefix + "y"]
    assert {e.revision for e in got} == {done.revision}


async def test_prev_kv_shows_what_a_delete_removed(etcd, etcd_prefix):
    revision = await etcd.put(etcd_prefix + "run", "worker-7")
    async with etcd.watch_prefix(etcd_prefix, start_revision=revision + 1,
                                 prev_kv=True) as events:
        await etcd.txn([], [Delete(etcd_prefix + "run")])
        (event,) = await take(events, 1)
    assert event.type is EventType.DELETE and event.prev.value == b"worker-7"


async def test_a_cancelled_read_loses_no_event(etcd, etcd_prefix):
    _, revision = await etcd.get_prefix(etcd_prefix)
    async with etcd.watch_prefix(etcd_prefix, start_revision=revision + 1) as events:
        for i in range(3):
            with trio.move_on_after(0.2) as waited:  # nothing to read: the read is cancelled
                await anext(events)
            assert waited.cancelled_caught
            await etcd.put(f"{etcd_prefix}{i}", str(i))
            assert [e.key for e in await take(events, 1)] == [f"{etcd_prefix}{i}"]
        await etcd.txn([], [Put(f"{etcd_prefix}{i}", "again") for i in range(3)])
        with trio.CancelScope() as scope:
            scope.cancel()
            await anext(events)
        got = await take(events, 3)
        assert events.statistics().buffered == 0
    assert [(e.key, e.value) for e in got] == [(f"{etcd_prefix}{i}", b"again") for i in range(3)]


async def test_watch_refuses_a_start_revision_below_one(etcd, etcd_prefix):
    with pytest.raises(ValueError, match="at least 1"):
        async with etcd.watch_prefix(etcd_prefix, start_revision=0):
            pass


async def test_a_closed_watch_refuses_reads(etcd, etcd_prefix):
    async with etcd.watch_prefix(etcd_prefix, start_revision=1) as events:
        pass
    with pytest.raises(trio.ClosedResourceError):
        await anext(events)


async def test_two_tasks_cannot_read_one_watch_at_once(etcd, etcd_prefix):
    _, revision = await etcd.get_prefix(etcd_prefix)
    async with etcd.watch_prefix(etcd_prefix, start_revision=revision + 1) as events:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(anext, events)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await anext(events)
            nursery.cancel_scope.cancel()
