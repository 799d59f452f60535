"""Skipped fires against real etcd, three Lockers: a fire no live worker can run (its
selector matches none) writes nothing and is counted once; the fires of a ``forbid``
job skipped while one run goes on are counted into one tally, exactly, whoever skips
which, and the run's end removes the tally with its guard."""

from __future__ import annotations

import uuid

import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from worker import claims
from worker.clock import SystemClock
from worker.locker.claim_batch import Outcome
from worker.locker.lock_leases import LockLeases
from worker.locker.transport import ClaimTransport
from worker.locker.messages import Claim
from worker.messages import Fire, Run
from worker.scheduler.messages import Denied
from worker.skips import SkipTally

from test_locker import Fleet, fire, granted, spec

T0 = 1_700_000_000_000


def denials(replies: dict[str, list]) -> list[Denied]:
    return [m for msgs in replies.values() for m in msgs if isinstance(m, Denied)]


async def test_a_fire_no_live_worker_can_run_writes_nothing_and_is_counted_once(
        etcd_endpoint, etcd_prefix):
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        fleet = Fleet(etcd, etcd_prefix)
        await fleet.start(nursery, labels={"zone": "a"})
        job = spec("zoned", selector={"zone": "b"}, concurrency="allow")
        fires = [fire(job, T0 + i * 1000) for i in range(5)]
        await fleet.claim_each(fires)
        replies = await fleet.replies()
        locks = await etcd.get_prefix(fleet.ks.lock_prefix("zoned"))
        nursery.cancel_scope.cancel()
    assert granted(replies) == [] and denials(replies) == []  # no skipped record at all
    assert locks.kvs == ()  # nor any claim in etcd
    counted = {w: a.statistics_detail().unschedulable for w, a in fleet.actors.items()}
    assert sum(counted.values()) == 5, counted  # each fire by exactly one worker
    assert all(a.statistics_detail().skipped == 0 for a in fleet.actors.values())


async def test_forbid_skips_while_one_run_goes_on_are_one_exact_tally(etcd_endpoint, etcd_prefix):
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        fleet = Fleet(etcd, etcd_prefix)
        await fleet.start(nursery)
        ks, job = fleet.ks, spec("busy")
        holder = await etcd.grant_lease(30)  # the session lease of the run's worker
        await etcd.put(ks.active("busy"), "long-run", lease_id=holder.id)
        for i in range(4):  # every worker plans every fire; one skips each
            await fleet.claim_each([fire(job, T0 + i * 1000)])
            await trio.sleep(0.3)
        skips = denials(await fleet.replies())
        kv = await etcd.get(ks.skipped("busy"))
        nursery.cancel_scope.cancel()
    assert sorted(d.tally.count for d in skips) == [1, 2, 3, 4]
    assert all(d.record_skip and d.tally.run_id == "long-run" for d in skips)
    assert kv is not None and kv.lease_id == holder.id  # goes if that worker dies
    assert SkipTally.from_bytes(kv.value) == SkipTally("long-run", 4, T0, T0, T0 + 3000)
    counts = [a.statistics_detail().skipped for a in fleet.actors.values()]
    assert sum(counts) == 4


async def test_the_run_end_removes_its_tally_and_the_next_run_counts_anew(etcd_endpoint, etcd_prefix):
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        fleet = Fleet(etcd, etcd_prefix, ids=("w1",))
        await fleet.start(nursery, listed=("w1",))
        ks, job = fleet.ks, spec("again")
        await fleet.everyone(Claim(fire(job, T0)))
        [(_, win)] = granted(await fleet.replies(0.5))
        await fleet.everyone(Claim(fire(job, T0 + 1000)))
        [first] = denials(await fleet.replies(0.5))
        assert first.tally == SkipTally(win.run.fire.run_id, 1, T0 + 1000, T0 + 1000, T0 + 1000)
        await claims.release_guard(etcd, ks, win.run)
        assert await etcd.get(ks.skipped("again")) is None
        await etcd.put(ks.active("again"), "next-run")
        await fleet.everyone(Claim(fire(job, T0 + 2000)))
        [second] = denials(await fleet.replies(0.5))
        nursery.cancel_scope.cancel()
    assert second.tally == SkipTally("next-run", 1, T0 + 2000, T0 + 2000, T0 + 2000)


async def test_a_manual_run_of_a_busy_job_is_recorded_on_its_own(etcd_endpoint, etcd_prefix):
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        fleet = Fleet(etcd, etcd_prefix)
        await fleet.start(nursery)
        ks, job = fleet.ks, spec("asked")
        await etcd.put(ks.active("asked"), "long-run")
        run_id = uuid.uuid4().hex
        await etcd.put(ks.trigger("asked", run_id), "{}")
        await fleet.everyone(Claim(Fire(job, T0, T0, claims.RunTrigger.MANUAL, run_id)))
        skips = denials(await fleet.replies())
        nursery.cancel_scope.cancel()
    assert len(skips) == 1 and skips[0].record_skip and skips[0].tally is None
    assert skips[0].fire.run_id == run_id


async def test_a_busy_skip_without_a_run_to_count_into_falls_back_or_yields(
        etcd_endpoint, etcd_prefix):
    async with open_etcd([etcd_endpoint]) as etcd:
        ks = Keyspace(etcd_prefix)
        transport = ClaimTransport(etcd, ks, "w1", SystemClock(), LockLeases(etcd, 60),
                                   session=lambda: None)
        job = spec("gone")
        # The run ended before the skip: no guard, so the fire is recorded on its own.
        assert await transport.claim_busy_skip(fire(job, T0)) is Outcome.SINGLE
        # Another worker holds the fire already.
        await etcd.put(ks.active("gone"), "run-x")
        taken = fire(job, T0 + 1000)
        await etcd.put(claims.lock_key(ks, taken), "theirs")
        assert await transport.claim_busy_skip(taken) is Outcome.TAKEN
        # A tally left by an earlier run (its guard was taken over): counted anew.
        await etcd.put(ks.skipped("gone"), SkipTally("run-old", 7, 1, 1, 7).to_bytes())
        assert await transport.claim_busy_skip(fire(job, T0 + 2000)) == \
            SkipTally("run-x", 1, T0 + 2000, T0 + 2000, T0 + 2000)
