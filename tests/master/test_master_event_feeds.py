"""The EventFeeds child against etcd and MariaDB, without HTTP: a restarted child goes on
from the positions it left in the hub, missing and repeating nothing, even between two
keys written by one transaction (one revision)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from cluster.etcd import Put
from cluster.store import open_store
from master import MasterContext
from master.event_feeds import EventFeeds
from master.events import EventHub
from master.runs import LogManager, StoreKeeper

from master_testkit import make_config, record

SPEC = b'{"command": "true", "cronExpr": "@yearly"}'


@asynccontextmanager
async def feeding(hub: EventHub, ctx: MasterContext, etcd, runs: LogManager
                  ) -> AsyncIterator[None]:
    """One EventFeeds child on ``hub`` for the block, then cut off as a crash would be."""
    async with trio.open_nursery() as nursery:
        await nursery.start(EventFeeds(hub, ctx, etcd, runs).run)
        yield
        nursery.cancel_scope.cancel()  # not request_stop: no close_all, as in a crash


def published(hub: EventHub, after: int = 0) -> list[tuple[str, str | None]]:
    return [(e.kind, e.job) for e in hub._ring if e.seq > after]


async def settle(hub: EventHub, count: int) -> None:
    with trio.fail_after(10):
        while len(hub._ring) < count:
            await trio.sleep(0.05)
    await trio.sleep(0.5)  # and nothing more comes


async def test_a_restarted_feed_misses_nothing_and_repeats_nothing(
        tmp_path, etcd, etcd_prefix, mysql_url):
    config = make_config(tmp_path, "unused:1", etcd_prefix, db_url=mysql_url)
    ctx = MasterContext.create(config)
    keys = ctx.keyspace
    runs = LogManager(ctx)
    hub = EventHub(ctx.metrics)
    async with trio.open_nursery() as nursery, open_store(mysql_url) as store:
        await nursery.start(StoreKeeper(runs).run)
        async with feeding(hub, ctx, etcd, runs):
            await etcd.put(keys.job("a"), SPEC)
            await store.write_batch([record("r1", "a")])
            await settle(hub, 2)
        # While no feed runs: two jobs in one transaction, a record, a deletion.
        both = await etcd.txn([], [Put(keys.job("b"), SPEC), Put(keys.job("c"), SPEC)])
        await store.write_batch([record("r2", "b")])
        await etcd.delete(keys.job("a"))
        async with feeding(hub, ctx, etcd, runs):
            await settle(hub, 6)
        assert sorted(published(hub, 2)) == [("job.deleted", "a"), ("job.saved", "b"),
                                             ("job.saved", "c"), ("run.finished", "b")]
        # Stopped after the first of the transaction's two keys: only the second again.
        hub.etcd_position = (both.revision, 1)
        seen = hub._seq
        async with feeding(hub, ctx, etcd, runs):
            await settle(hub, seen + 2)  # c, and a (deleted after the txn) once more
        nursery.cancel_scope.cancel()
    assert published(hub, seen) == [("job.saved", "c"), ("job.deleted", "a")]
