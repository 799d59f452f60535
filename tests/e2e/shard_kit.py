"""Sharded clusters for end-to-end tests: turn shards on, read what each worker plans.

Shards are on when ``<p>shards`` holds S and R (DESIGN §6b); the master writes it
from ``--shard-slots``, a test writes it itself before the first worker starts.
"""

from __future__ import annotations

import httpx
import trio

from cluster.etcd import Etcd
from cluster.keyspace import Keyspace
from cluster.presence import WorkerInfo, fleet_epoch
from cluster.shard_settings import ShardSettings
from cluster.slots import SlotTable, slot_of


async def turn_shards_on(etcd: Etcd, ks: Keyspace, settings: ShardSettings) -> None:
    await etcd.put(ks.shards, settings.to_bytes())


def expected_jobs(settings: ShardSettings, workers: list[str],
                  names: list[str]) -> dict[str, set[str]]:
    """Each worker's jobs (no selectors) by the slot table of ``workers``."""
    table = SlotTable.build(workers, settings.replicas, slots=settings.slots)
    plan: dict[str, set[str]] = {w: set() for w in workers}
    for name in names:
        for owner in table.owners[slot_of(name, settings.slots)]:
            plan[owner].add(name)
    return plan


async def gauge(port: int, name: str) -> float | None:
    """One sample of a worker's metric, or None (not there, or no answer)."""
    try:
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics", timeout=2)).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


async def wait_serving(etcd: Etcd, ks: Keyspace, ids: set[str], timeout_s: float = 30.0) -> None:
    """Until exactly ``ids`` are registered and each says it serves that membership."""
    epoch = fleet_epoch(ids)
    with trio.fail_after(timeout_s):
        while True:
            infos = [WorkerInfo.from_bytes(kv.value)
                     for kv in (await etcd.get_prefix(ks.workers_prefix)).kvs]
            if {i.worker_id for i in infos} == ids and all(
                    i.serving is not None and i.serving.fleet == epoch
                    and not i.serving.leaving for i in infos):
                return
            await trio.sleep(0.1)
