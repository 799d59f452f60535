"""The JobCache behind GET /api/v1/jobs (master/job_cache.py), against real etcd: a list
answers from memory, and is never older than the request: a job put or deleted through
the API or straight into etcd is in the next list; a transaction is never seen in
half; a watch that lost its history reads again; while the cache cannot say it is
current, lists read etcd and are right all the same."""

from __future__ import annotations

import json

import trio

from cluster.etcd import Put, open_etcd
from cluster.mirror import PrefixMirror
from master import MasterContext
from master.jobs import JobManager

from etcd_history import compact
from master_testkit import make_config


def spec(name: str, command: str = "true", **fields) -> bytes:
    return json.dumps({"name": name, "command": command, "cronExpr": "*/5 * * * *",
                       **fields}).encode()


async def names(master) -> list[str]:
    answer = await master.get("/api/v1/jobs")
    assert answer.status == 200, answer.json
    return [job["name"] for job in answer.json["jobs"]]


async def until_synced(cache) -> None:
    with trio.fail_after(10):
        while not cache.synced:
            await trio.sleep(0.01)


async def test_writes_through_the_api_are_in_the_next_list_answered_from_memory(master):
    cache = master.services.jobs.cache
    await until_synced(cache)
    before = cache.statistics()
    for name in ("b", "a", "c"):
        put = await master.put(f"/api/v1/jobs/{name}", json={"command": "true",
                                                             "cronExpr": "*/5 * * * *"})
        assert put.status == 201
        assert name in await names(master)  # right after its PUT: read-your-writes
    assert await names(master) == ["a", "b", "c"]
    assert (await master.delete("/api/v1/jobs/b")).status == 200
    assert await names(master) == ["a", "c"]
    paused = await master.post("/api/v1/jobs/c/pause")
    assert paused.status == 200
    page = (await master.get("/api/v1/jobs", query_string={"state": "paused"})).json
    assert [job["name"] for job in page["jobs"]] == ["c"] and page["total"] == 1
    after = cache.statistics()
    assert after.hits - before.hits >= 6 and after.misses == before.misses
    assert after.loads == before.loads  # followed by the watch, not read again
    metrics = master.ctx.metrics
    assert metrics.value("job_list_reads_total", source="cache") == after.hits
    assert (metrics.value("job_list_reads_total", source="etcd") or 0) == after.misses


async def test_writes_straight_into_etcd_are_in_the_next_list(master):
    cache, ks = master.services.jobs.cache, master.keyspace
    await until_synced(cache)
    before = cache.statistics()
    await master.etcd.put(ks.job("direct"), spec("direct"))
    assert await names(master) == ["direct"]
    await master.etcd.put(ks.job("direct"), spec("direct", paused=True))
    counts = (await master.get("/api/v1/stats", query_string={"window": "1h"})).json["counts"]
    assert (counts["jobs"], counts["pausedJobs"]) == (1, 1)
    await master.etcd.delete(ks.job("direct"))
    assert await names(master) == []
    await master.etcd.put(ks.job("broken"), b"{not json")  # not a job: not listed
    assert await names(master) == []
    after = cache.statistics()
    assert after.hits - before.hits == 4 and after.misses == before.misses


async def test_a_transaction_of_several_jobs_is_never_listed_in_half(master):
    """Both jobs change in one transaction, 40 times, while lists run: each list shows
    both with the same command."""
    cache, ks = master.services.jobs.cache, master.keyspace
    await master.etcd.txn([], [Put(ks.job(n), spec(n, "v0")) for n in ("x", "y")])
    await until_synced(cache)
    seen: list[tuple[str, str]] = []

    async def lister() -> None:
        while True:
            answer = await master.get("/api/v1/jobs")
            commands = {job["name"]: job["command"] for job in answer.json["jobs"]}
            seen.append((commands["x"], commands["y"]))
            await trio.sleep(0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lister)
        for i in range(1, 41):
            await master.etcd.txn([], [Put(ks.job(n), spec(n, f"v{i}")) for n in ("x", "y")])
            await trio.sleep(0.005)
        nursery.cancel_scope.cancel()
    assert len(seen) >= 10
    assert [pair for pair in seen if pair[0] != pair[1]] == []


class GatedFeed:
    """Feeds a JobCache from a PrefixMirror as the SchedulableWatch does; ``hold`` keeps
    the mirror in its next whole read until released (it watches only after)."""

    def __init__(self, cache) -> None:
        self.cache = cache
        self.hold: trio.Event | None = None
        self.holding = trio.Event()

    async def on_read(self, snapshot, _after) -> None:
        self.cache.load(snapshot)
        if self.hold is not None:
            self.holding.set()
            await self.hold.wait()
            self.hold = None

    async def on_event(self, event) -> None:
        self.cache.apply(event)


async def test_a_compacted_watch_reads_again_and_lists_stay_right_meanwhile(
        etcd_factory, tmp_path):
    server = etcd_factory()  # private: compaction is server-wide
    config = make_config(tmp_path, server.endpoint, "/cache/")
    ctx = MasterContext.create(config)
    ks = ctx.keyspace
    async with open_etcd([server.endpoint]) as etcd:
        jobs = JobManager(ctx, etcd)
        await etcd.put(ks.job("a"), spec("a"))
        mirror = PrefixMirror(etcd, ks.jobs_prefix)
        jobs.cache.follow(mirror)
        feed = GatedFeed(jobs.cache)
        feed.hold = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(mirror.run, feed.on_read, feed.on_event)
            with trio.fail_after(10):
                await feed.holding.wait()
            # Held after its first read: not watching, so not synced; lists read etcd.
            await etcd.put(ks.job("b"), spec("b"))
            await etcd.delete(ks.job("a"))
            latest = await etcd.put(ks.job("c"), spec("c"))
            assert not jobs.cache.synced
            assert [s.name for s in (await jobs.snapshot()).specs] == ["b", "c"]
            assert jobs.cache.statistics().hits == 0
            await trio.to_thread.run_sync(compact, server.endpoint, latest)
            feed.hold.set()  # its watch starts before the compaction: read again
            with trio.fail_after(10):
                while mirror.statistics().compactions == 0:
                    await trio.sleep(0.01)
            await until_synced(jobs.cache)
            assert jobs.cache.statistics().loads == 2
            assert [s.name for s in (await jobs.snapshot()).specs] == ["b", "c"]
            await etcd.put(ks.job("d"), spec("d"))
            assert [s.name for s in (await jobs.snapshot()).specs] == ["b", "c", "d"]
            assert jobs.cache.statistics().hits == 2
            nursery.cancel_scope.cancel()


async def test_a_watch_behind_etcd_for_longer_than_the_wait_is_read_around(
        etcd_endpoint, etcd_prefix, tmp_path):
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix)
    ctx = MasterContext.create(config)
    ks = ctx.keyspace
    async with open_etcd([etcd_endpoint]) as etcd:
        jobs = JobManager(ctx, etcd)
        mirror = PrefixMirror(etcd, ks.jobs_prefix)
        jobs.cache.follow(mirror)
        stuck = trio.Event()

        async def on_event(event) -> None:
            await stuck.wait()  # the listener stalls: the watch falls behind
            jobs.cache.apply(event)

        async with trio.open_nursery() as nursery:
            await nursery.start(mirror.run, lambda snap, _: _load(jobs.cache, snap), on_event)
            await until_synced(jobs.cache)
            await etcd.put(ks.job("late"), spec("late"))
            started = trio.current_time()
            assert [s.name for s in (await jobs.snapshot()).specs] == ["late"]
            assert trio.current_time() - started >= 0.4  # waited for the watch, then read
            assert jobs.cache.statistics().misses == 1
            stuck.set()
            assert [s.name for s in (await jobs.snapshot()).specs] == ["late"]
            assert jobs.cache.statistics().hits == 1
            nursery.cancel_scope.cancel()
        await etcd.delete_prefix(etcd_prefix)


async def _load(cache, snapshot) -> None:
    cache.load(snapshot)
