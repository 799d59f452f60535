"""SIGTERM one of three workers mid-run, as a rolling restart does: no fire is missed,
none runs twice, none is left lost. It stops as its fires are being claimed ahead: the
fires it claimed still run (its pipeline stops before its Executor, which lets them
start and finish), the ones it no longer claims are covered by the others."""

from __future__ import annotations

import json
import signal
from collections import Counter

import pytest
import trio

from cluster.config import Config
from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.shard_settings import ShardSettings
from cluster.store import RunStatus, open_store
from e2e_harness import (all_records, check_fires, put_every_second, put_job, start_workers,
                         wall_ms)
from shard_kit import turn_shards_on
from worker.shutdown_budget import ShutdownBudget

pytestmark = pytest.mark.slow

JOBS = 20
NAMES = [f"job{j:02d}" for j in range(JOBS)]


async def test_a_stopping_worker_leaves_no_fire_behind(make_cluster, mysql_url):
    cluster = make_cluster(mysql_url)
    ks = Keyspace(cluster.prefix)
    async with open_etcd([cluster.etcd_endpoint]) as etcd:
        await start_workers(cluster, etcd, ks, ["g0", "g1", "g2"])
        window_start = await put_every_second(etcd, ks, NAMES, "sleep 0.3")
        # Just before fires are due: claims (200 ms ahead) are in flight when it stops.
        await trio.sleep((window_start - wall_ms()) / 1000 + 3.85)
        assert cluster.workers[1].terminate() == 0, cluster.logs()
        stopped_at = wall_ms()
        await trio.sleep(5)
        window_end = (wall_ms() // 1000 - 2) * 1000
        cluster.stop_all()
    async with open_store(mysql_url) as store:
        records = [r for r in await all_records(store) if window_start <= r.plan_time < window_end]

    fires = check_fires(records, NAMES, window_start, window_end)
    assert fires.missed == []  # nothing missed
    assert fires.repeated == []  # nothing twice
    assert Counter(r.status for r in records) == Counter({RunStatus.SUCCEEDED: len(records)})
    assert "g1" not in {r.worker for r in records if r.plan_time > stopped_at + 1000}


HELD_JOBS = 8  # a thin window: one worker's plan of them reaches a second ahead


@pytest.mark.parametrize("shards", [None, ShardSettings(256, 2)], ids=["unsharded", "256:2"])
async def test_a_fleet_stopped_with_runs_held_ahead_leaves_nothing_behind(make_cluster,
                                                                          tmp_path, shards):
    """The whole fleet gets one SIGTERM at once (a benchmark's end, a full restart) while
    each worker holds processes spawned ahead of their instant (the thin window's reach,
    ``scheduler.plan``): each stops gracefully within its budget, every run marked
    ``started`` has a record (SQLite, 4 writers: stored or spilled), no ``running`` key
    is left and every session lease is revoked. Sharded too, as ``benchmarks.scale
    --fleet`` runs it (a leaving worker claims until its slots are handed over). (A
    second SIGTERM is what cuts this short: ``benchmarks._workers.Fleet.stop`` used to
    send one.)"""
    cluster = make_cluster(f"sqlite:///{tmp_path / 'runs.db'}")
    ks = Keyspace(cluster.prefix)
    ids = ["h0", "h1", "h2", "h3"]
    started: set[str] = set()
    async with open_etcd([cluster.etcd_endpoint]) as etcd:
        if shards is not None:
            await turn_shards_on(etcd, ks, shards)
        await start_workers(cluster, etcd, ks, ids)
        anchor_ms = (wall_ms() // 1000 - 60) * 1000
        since = (await etcd.get_prefix(ks.running_prefix())).revision + 1

        async def note_started(task_status=trio.TASK_STATUS_IGNORED) -> None:
            async with etcd.watch_prefix(ks.running_prefix(), start_revision=since) as events:
                task_status.started()
                async for event in events:
                    if event.kv.value and json.loads(event.kv.value)["state"] == "started":
                        started.add(json.loads(event.kv.value)["runId"])

        async with trio.open_nursery() as nursery:
            await nursery.start(note_started)
            for i in range(HELD_JOBS):  # @every 1s, spread over the second
                await put_job(etcd, ks, f"held{i}", "true", "@every 1s", concurrency="allow",
                              createdAt=anchor_ms + i * 1000 // HELD_JOBS)
            # Until runs are marked started at least 0.4 s before their instant, twice.
            with trio.fail_after(30):
                while True:
                    await trio.sleep(0.05)
                    now = wall_ms()
                    ahead = [v for kv in (await etcd.get_prefix(ks.running_prefix())).kvs
                             if (v := json.loads(kv.value))["state"] == "started"
                             and v["planTime"] > now + 400]
                    if len(ahead) >= 2 and now - anchor_ms > 63_000:
                        break
            for worker in cluster.workers:  # once each, all at once
                worker.process.send_signal(signal.SIGTERM)
            budget_s = ShutdownBudget.from_config(Config()).total_s
            codes = [await trio.to_thread.run_sync(w.process.wait, budget_s)
                     for w in cluster.workers]
            stopped = wall_ms()
            left = (await etcd.get_prefix(ks.running_prefix())).kvs
            registered = (await etcd.get_prefix(ks.workers_prefix)).kvs
            await trio.sleep(0.5)  # the watch's last events
            nursery.cancel_scope.cancel()
    assert codes == [0] * len(ids), cluster.logs()
    assert all("forced=False" in w.log_tail() for w in cluster.workers), cluster.logs()
    assert wall_ms() - stopped < 10_000
    assert left == () and registered == (), cluster.logs()  # keys released, leases revoked
    async with open_store(cluster.db_url) as store:
        stored = {r.run_id for r in await all_records(store)}
    spilled = {json.loads(line)["runId"] for f in (tmp_path / "spill").glob("*.jsonl")
               for line in f.read_text().splitlines() if line.strip()}
    assert started, "no run was marked started"
    assert started - stored - spilled == set(), cluster.logs()
