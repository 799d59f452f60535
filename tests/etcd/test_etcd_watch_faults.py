"""Watches against private etcd servers that the tests kill, restart and compact."""

from __future__ import annotations

import pytest
import trio

from cluster.etcd import WatchCompacted, open_etcd
from etcd_testkit import compact, etcd_watchers, thread_count, wait_until, write_once

P = "/cron/jobs/"


async def restart(server, down_s: float = 1.0) -> None:
    """SIGKILL etcd (a crash), stay down a moment, start it on the same data and ports."""
    await trio.to_thread.run_sync(server.kill)
    await trio.sleep(down_s)
    await trio.to_thread.run_sync(server.start)


async def test_watch_loses_no_event_across_an_etcd_restart(etcd_factory):
    server = etcd_factory()
    keys = [f"{P}{i:04d}" for i in range(150)]
    received: list[str] = []
    async with open_etcd([server.endpoint], timeout_s=2.0) as etcd:
        _, revision = await etcd.get_prefix(P)

        async def writer() -> None:
            for key in keys:
                await write_once(etcd, key)
                await trio.sleep(0.01)

        async def crash_midway() -> None:
            await wait_until(lambda: len(received) >= 40, what="40 events before the crash")
            await restart(server)

        async with etcd.watch_prefix(P, start_revision=revision + 1) as events:
            with trio.fail_after(90):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(writer)
                    nursery.start_soon(crash_midway)
                    async for event in events:
                        received.append(event.key)
                        if len(received) == len(keys):
                            break
            reconnects = events.statistics().reconnects
        _, final_revision = await etcd.get_prefix(P)
    assert received == keys  # every write exactly once, in order
    assert reconnects >= 1  # the stream really broke and was resumed
    assert final_revision == revision + len(keys)  # the writer wrote each key once


async def test_a_watch_starting_before_the_compaction_raises_watch_compacted(etcd_factory):
    server = etcd_factory()
    async with open_etcd([server.endpoint]) as etcd:
        first = await etcd.put(P + "a", "1")
        for i in range(4):
            last = await etcd.put(P + "a", str(i))
        await trio.to_thread.run_sync(compact, server.endpoint, last)
        async with etcd.watch_prefix(P, start_revision=first) as events:
            with trio.fail_after(10), pytest.raises(WatchCompacted) as raised:
                await anext(events)
            assert (raised.value.requested_revision, raised.value.compact_revision) == (
                first, last)
            with pytest.raises(WatchCompacted):  # the stream is finished: no silent resume
                await anext(events)
        async with etcd.watch_prefix(P, start_revision=last) as events:
            with trio.fail_after(10):  # the compaction revision itself is still there
                assert (await anext(events)).revision == last


async def test_a_watch_resuming_after_a_compaction_raises_watch_compacted(etcd_factory):
    server = etcd_factory()
    async with open_etcd([server.endpoint], timeout_s=2.0) as etcd:
        first = await etcd.put(P + "a", "1")
        async with etcd.watch_prefix(P, start_revision=first) as events:
            with trio.fail_after(10):
                assert (await anext(events)).revision == first
            # While nobody reads, the stream breaks and history moves past it.
            await restart(server, down_s=0.2)
            for i in range(3):
                await write_once(etcd, f"{P}b{i}")
            _, latest = await etcd.get_prefix(P)
            await trio.to_thread.run_sync(compact, server.endpoint, latest)
            with trio.fail_after(20), pytest.raises(WatchCompacted) as raised:
                await anext(events)
    assert (raised.value.requested_revision, raised.value.compact_revision) == (
        first + 1, latest)


async def test_a_read_at_a_past_revision_sees_that_past_until_it_is_compacted(etcd_factory):
    """What a deletion took is read at the revision before it; once compaction removed
    that revision the read raises the adapter's compaction error, not a rejection."""
    server = etcd_factory()
    async with open_etcd([server.endpoint]) as etcd:
        await etcd.put(P + "a", "1")
        before = await etcd.put(P + "b", "2")
        gone = await etcd.delete_prefix(P)
        now = await etcd.put(P + "c", "3")
        past = await etcd.get_prefix(P, revision=before)
        assert ([(kv.key, kv.value) for kv in past.kvs], past.revision) == (
            [(P + "a", b"1"), (P + "b", b"2")], now)  # the read's revision is the present's
        assert gone == 2 and [kv.key for kv in (await etcd.get_prefix(P)).kvs] == [P + "c"]
        await trio.to_thread.run_sync(compact, server.endpoint, now)
        with pytest.raises(WatchCompacted, match=f"revision {before}: that revision is compacted"
                           ) as raised:
            await etcd.get_prefix(P, revision=before)
        assert (raised.value.requested_revision, raised.value.compact_revision) == (before, None)
        assert [kv.key for kv in (await etcd.get_prefix(P, revision=now)).kvs] == [P + "c"]


async def test_leaving_a_watch_leaves_no_thread_and_no_etcd_watcher(etcd_factory):
    server = etcd_factory()
    async with open_etcd([server.endpoint]) as etcd:
        revision = await etcd.put(P + "a", "1")  # also warms trio's thread cache
        threads_before = thread_count()
        assert etcd_watchers(server.endpoint) == 0
        async with etcd.watch_prefix(P, start_revision=revision) as events:
            await anext(events)
            assert etcd_watchers(server.endpoint) == 1
            assert thread_count() > threads_before  # the check below has teeth
            with trio.move_on_after(0.3):  # a consumer cancelled mid-read
                await anext(events)
        await wait_until(lambda: thread_count() <= threads_before, timeout_s=5,
                         what="watch threads gone")
        await wait_until(lambda: etcd_watchers(server.endpoint) == 0, timeout_s=5,
                         what="etcd watcher cancelled")
