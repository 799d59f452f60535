"""The Locker while the spill directory is full (issue 11, item 5; ``worker.spill_room``):
it claims no new fire and records no skip, counts each, and claims again once there
is room. Against real etcd, with the Fleet of test_locker."""

from __future__ import annotations

import errno

import pytest
import trio

from cluster.etcd import open_etcd
from worker import claims
from worker.locker.messages import Claim
from worker.run_load import RunLoad
from worker.spill_room import SpillRoom

from test_locker import IDS, Fleet, fire, granted, spec

T0 = 1_700_000_000_000


def full_room() -> SpillRoom:
    room = SpillRoom()
    room.refused(OSError(errno.ENOSPC, "No space left on device"), kept=21)
    return room


async def test_a_worker_whose_spill_is_full_claims_nothing_and_the_others_take_its_fires(
        etcd_endpoint, etcd_prefix):
    room = full_room()
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        fleet = Fleet(etcd, etcd_prefix)
        await fleet.start(nursery, rooms={"w1": room})
        job = spec("spillfull", concurrency="allow")
        fires = [fire(job, T0 + i * 1000) for i in range(30)]
        await fleet.claim_each(fires)
        wins = granted(await fleet.replies())
        stats = fleet.actors["w1"].statistics_detail()
        nursery.cancel_scope.cancel()
    assert sorted(m.run.fire.planned_ms for _, m in wins) == [f.planned_ms for f in fires]
    assert {w for w, _ in wins} == {"w2", "w3"}  # 0 missed, 0 doubled, none by w1
    assert stats.won == 0 and stats.spill_full == 30  # each fire counted, none claimed


async def test_a_lone_worker_with_a_full_spill_claims_again_once_there_is_room(
        etcd_endpoint, etcd_prefix):
    room = full_room()
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        fleet = Fleet(etcd, etcd_prefix, ids=("w1",))
        await fleet.start(nursery, listed=("w1",), rooms={"w1": room})
        (peers, inboxes), = fleet.lockers.values()
        job = spec("alone", concurrency="allow")
        first = [fire(job, T0 + i * 1000) for i in range(5)]
        for f in first:
            await peers.locker.send(Claim(f))
        assert granted(await fleet.replies()) == []
        for f in first:  # not claimed: no lock key was written
            assert await etcd.get(claims.lock_key(fleet.ks, f)) is None
        assert fleet.actors["w1"].statistics_detail().spill_full == 5

        room.has_room("the spill file takes records again")
        later = [fire(job, T0 + (10 + i) * 1000) for i in range(5)]
        for f in later:
            await peers.locker.send(Claim(f))
        wins = granted(await fleet.replies())
        stats = fleet.actors["w1"].statistics_detail()
        nursery.cancel_scope.cancel()
    assert sorted(m.run.fire.planned_ms for _, m in wins) == [f.planned_ms for f in later]
    assert stats.won == 5 and stats.spill_full == 5


@pytest.mark.parametrize("full", [True, False])
async def test_a_full_spill_records_no_skip(etcd_endpoint, etcd_prefix, full):
    """A skip is a record too: a worker whose spill is full leaves it unrecorded (the
    control: with room, the same fire is recorded skipped)."""
    room = full_room() if full else SpillRoom()
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        fleet = Fleet(etcd, etcd_prefix, ids=("w1",))
        # w1 is the only worker and it is at capacity: normally it records the skip
        # "no worker had free capacity".
        load = RunLoad()
        load.running = 1
        await fleet.start(nursery, listed=("w1",), rooms={"w1": room}, loads={"w1": load},
                          claim_step_s=0.01, capacity=1)
        (peers, _), = fleet.lockers.values()
        f = fire(spec("busy", concurrency="allow"), T0)
        await peers.locker.send(Claim(f))
        replies = await fleet.replies()
        stats = fleet.actors["w1"].statistics_detail()
        nursery.cancel_scope.cancel()
    recorded = [m.reason for m in replies["w1"] if getattr(m, "record_skip", False)]
    assert recorded == ([] if full else ["no worker had free capacity"])
    assert (stats.skipped, stats.spill_full) == ((0, 1) if full else (1, 0))
