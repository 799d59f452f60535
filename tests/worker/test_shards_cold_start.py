"""A simulated cold start of a sharded fleet (``worker.shards``, no servers): workers
register at random moments, settle, load their plans (taking random times) and publish
``serving``, each reacting to every change of the registrations as the JobWatcher
does. Whatever the order, every fleet converges on its slot table, and once every
worker has loaded once no job is left without a worker planning it. (Before that, a
job waits for one of its servers' first load: the cohort's price, DESIGN §6b.)"""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from cluster.presence import WorkerInfo
from cluster.shard_settings import ShardSettings
from cluster.slots import SlotTable, slot_of
from worker.shards import ShardState

SETTINGS = ShardSettings(slots=64, replicas=2)
NAMES = [f"job{i}" for i in range(400)]


@pytest.fixture
def autojump_clock():
    return trio.testing.MockClock(autojump_threshold=0)


class Sim:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.registry: dict[str, WorkerInfo] = {}
        self.shards: dict[str, ShardState] = {}
        self.planned: dict[str, frozenset[str]] = {}
        self.loaded_once: set[str] = set()
        self.bare: list[tuple[float, int]] = []  # (time, jobs nobody plans) after all loaded
        self.reloads: dict[str, trio.Event] = {}
        self.fallbacks = 0

    def workers(self) -> tuple[WorkerInfo, ...]:
        return tuple(self.registry[w] for w in sorted(self.registry))

    def changed(self) -> None:
        """workers/ changed: every started worker's fleet listener sees it."""
        now = trio.current_time()
        for worker_id, shards in self.shards.items():
            shards.seen(self.workers(), now)
            fleet = shards.proposed(self.workers(), now)
            if fleet is not None:
                shards.adopt(fleet)
                self.reloads[worker_id].set()
        self.check()

    def publish(self, worker_id: str) -> None:
        info = self.registry[worker_id]
        self.registry[worker_id] = WorkerInfo(worker_id, "h", 1, info.labels,
                                              serving=self.shards[worker_id].serving())
        self.changed()

    def check(self) -> None:
        if len(self.loaded_once) < len(self.shards) or not self.shards:
            return
        covered = set().union(*self.planned.values())
        if len(covered) < len(NAMES):
            self.bare.append((trio.current_time(), len(NAMES) - len(covered)))

    async def load(self, worker_id: str) -> None:
        shards = self.shards[worker_id]
        fleet = shards.fleet
        plan = frozenset(n for n in NAMES if shards.plans(n, {}))
        await trio.sleep(self.rng.uniform(0.2, 3.0))  # reading jobs/, parsing
        self.planned[worker_id] = plan
        self.loaded_once.add(worker_id)
        if shards.fleet is fleet:
            shards.loaded()
            self.publish(worker_id)
        else:
            self.reloads[worker_id].set()
        self.check()

    async def worker(self, worker_id: str, start_s: float) -> None:
        await trio.sleep(start_s)
        shards = ShardState(worker_id, {}, SETTINGS)
        self.reloads[worker_id] = trio.Event()
        self.registry[worker_id] = WorkerInfo(worker_id, "h", 1)
        self.shards[worker_id] = shards
        self.planned[worker_id] = frozenset()
        self.changed()  # its own registration; the others see it
        await shards.settle()
        await self.load(worker_id)
        while True:
            await self.reloads[worker_id].wait()
            self.reloads[worker_id] = trio.Event()
            await self.load(worker_id)


@pytest.mark.parametrize("seed", range(40))
async def test_a_cold_start_in_any_order_converges_and_leaves_no_job_bare_once_loaded(
        seed, autojump_clock):
    rng = random.Random(seed)
    size = rng.randint(2, 8)
    spread_s = rng.choice([0.1, 1.0, 3.0, 6.0])
    sim = Sim(rng)
    ids = [f"w{i}" for i in range(size)]
    async with trio.open_nursery() as nursery:
        for worker_id in ids:
            nursery.start_soon(sim.worker, worker_id, rng.uniform(0, spread_s))
        await trio.sleep(120)
        nursery.cancel_scope.cancel()
    table = SlotTable.build(ids, SETTINGS.replicas, slots=SETTINGS.slots)
    for worker_id in ids:
        share = {n for n in NAMES if worker_id in table.owners[slot_of(n, SETTINGS.slots)]}
        assert sim.planned[worker_id] == share, (worker_id, sim.shards[worker_id].cohort)
    assert sim.bare == [], sim.bare
