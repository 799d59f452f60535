"""Marking runs started against real etcd: compare-and-set, batches, gone keys."""

from __future__ import annotations

import uuid

import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.presence import STARTED, RunningInfo
from cluster.spec import JobSpec
from cluster.store import RunTrigger
from worker import claims
from worker.clock import SystemClock
from worker.executor.start_marks import StartMarks
from worker.messages import Fire, Run

WAIT_S = 10


def claimed_run(name: str, lease: int) -> Run:
    job = JobSpec.from_json({"name": name, "command": "true", "cronExpr": "* * * * * *"})
    return Run(Fire(job, 1_700_000_000_000, 1_700_000_000_000, RunTrigger.SCHEDULE,
                    uuid.uuid4().hex), lease, False)


async def claim(etcd, ks: Keyspace, run: Run, worker_id: str = "w1") -> str:
    key = ks.running(run.fire.spec.name, run.fire.run_id)
    info = claims.running_info(run.fire, worker_id, 1)
    await etcd.put(key, info.to_bytes(), lease_id=run.session_lease)
    return key


async def test_marks_land_in_batches_and_keep_the_session_lease(etcd_endpoint, etcd_prefix):
    ks = Keyspace(etcd_prefix)
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        marks = StartMarks(etcd, ks, "w1", SystemClock(), size=100)
        nursery.start_soon(marks.serve)
        lease = (await etcd.grant_lease(30)).id
        runs = [claimed_run(f"job{i}", lease) for i in range(100)]
        keys = [await claim(etcd, ks, run) for run in runs]
        results: list[bool] = []

        async def mark(run: Run) -> None:
            results.append(await marks.mark(run))

        with trio.fail_after(WAIT_S):
            async with trio.open_nursery() as marking:
                for run in runs:
                    marking.start_soon(mark, run)
        kvs = [await etcd.get(key) for key in keys]
        nursery.cancel_scope.cancel()
    assert results == [True] * 100
    assert all(RunningInfo.from_bytes(kv.value).state == STARTED for kv in kvs)
    assert {kv.lease_id for kv in kvs} == {lease}
    assert {kv.version for kv in kvs} == {2}
    # Group commit: a hundred marks took far fewer than a hundred transactions.
    assert max(kv.mod_revision for kv in kvs) - min(kv.mod_revision for kv in kvs) < 50


async def test_a_gone_key_is_never_marked_and_does_not_hold_up_the_others(
        etcd_endpoint, etcd_prefix):
    ks = Keyspace(etcd_prefix)
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        marks = StartMarks(etcd, ks, "w1", SystemClock(), size=10)
        lease = (await etcd.grant_lease(30)).id
        kept, gone, elsewhere, orphaned = (claimed_run(n, lease) for n in "abcd")
        for run in (kept, orphaned):
            await claim(etcd, ks, run)
        await claim(etcd, ks, elsewhere, worker_id="w2")  # claimed again by another worker
        # Its process settled it first (``orphan``): already started, version 2.
        info = claims.running_info(orphaned.fire, "w1", 2, STARTED)
        await etcd.put(ks.running("d", orphaned.fire.run_id), info.to_bytes(), lease_id=lease)
        got: dict[str, bool] = {}

        async def mark(run: Run) -> None:
            got[run.fire.spec.name] = await marks.mark(run)

        with trio.fail_after(WAIT_S):
            async with trio.open_nursery() as marking:
                for run in (kept, gone, elsewhere, orphaned):
                    marking.start_soon(mark, run)
                await trio.sleep(0.1)  # all four queued: they share the first batch
                nursery.start_soon(marks.serve)
        absent = await etcd.get(ks.running("b", gone.fire.run_id))
        nursery.cancel_scope.cancel()
    assert got == {"a": True, "b": False, "c": False, "d": True}
    assert absent is None  # a mark never creates a key


async def test_a_key_claimed_again_by_another_worker_is_never_marked(etcd_endpoint, etcd_prefix):
    """Same run id (a run claimed again after its worker died), another worker's lease."""
    ks = Keyspace(etcd_prefix)
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        marks = StartMarks(etcd, ks, "w1", SystemClock(), size=10)
        nursery.start_soon(marks.serve)
        ours, theirs = (await etcd.grant_lease(30)).id, (await etcd.grant_lease(30)).id
        run = claimed_run("again", ours)
        key = await claim(etcd, ks, Run(run.fire, theirs, False), worker_id="w2")
        with trio.fail_after(WAIT_S):
            marked = await marks.mark(run)
        kv = await etcd.get(key)
        nursery.cancel_scope.cancel()
    assert not marked
    assert (kv.version, kv.lease_id, RunningInfo.from_bytes(kv.value).worker_id) == (1, theirs, "w2")


async def test_a_mark_waits_out_an_unreachable_etcd(etcd_endpoint, etcd_prefix):
    """It never gives up on its own: the run waits (or is killed), never starts on a guess."""
    ks = Keyspace(etcd_prefix)
    async with open_etcd(["127.0.0.1:1"], timeout_s=0.2) as dead:
        marks = StartMarks(dead, ks, "w1", SystemClock(), size=10)
        run = claimed_run("x", 1)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(marks.serve)
            with trio.move_on_after(1.5) as waited:
                await marks.mark(run)
            nursery.cancel_scope.cancel()
    assert waited.cancelled_caught
