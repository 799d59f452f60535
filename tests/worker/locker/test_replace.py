"""Concurrency ``replace`` against real etcd: the running instance is asked to die and the
fire takes its place; one that will not die keeps it, and the fire is recorded skipped."""

from __future__ import annotations

import json
import uuid

import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.last_fire import LastFire
from cluster.presence import RunningInfo
from cluster.spec import JobSpec
from cluster.store import RunTrigger
from worker import claims
from worker.clock import SystemClock
from worker.locker.replace import NotReplaced, Replacer
from worker.messages import Fire, Run

T0 = 1_700_000_000_000


def fire(name: str = "rep", planned_ms: int = T0) -> Fire:
    spec = JobSpec.from_json({"name": name, "command": "true", "cronExpr": "* * * * * *",
                              "concurrency": "replace"})
    return Fire(spec, planned_ms, planned_ms, RunTrigger.SCHEDULE, uuid.uuid4().hex)


async def dies_when_asked(etcd, ks: Keyspace, name: str) -> None:
    """What the running instance's Executor does: on its killer key, give the guard back."""
    while await etcd.get(ks.killer(name)) is None:
        await trio.sleep(0.02)
    await etcd.delete(ks.active(name))


async def test_replace_kills_the_running_instance_then_takes_its_place(etcd_endpoint, etcd_prefix):
    ks = Keyspace(etcd_prefix)
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        session = (await etcd.grant_lease(10)).id
        lock_lease = (await etcd.grant_lease(10)).id
        await etcd.put(ks.active("rep"), "old-run")
        nursery.start_soon(dies_when_asked, etcd, ks, "rep")
        f = fire()
        replacer = Replacer(etcd, ks, "w1", SystemClock(), kill_grace_s=2.0)
        with trio.fail_after(5):
            outcome = await replacer.replace(f, session, lock_lease)
        kill = json.loads((await etcd.get(ks.killer("rep"))).value)
        active = await etcd.get(ks.active("rep"))
        running = await etcd.get(ks.running("rep", f.run_id))
        lock = await etcd.get(claims.lock_key(ks, f))
        state = LastFire.from_bytes((await etcd.get(ks.state("rep"))).value)
    assert outcome == Run(f, session, guarded=True)
    # state/<name>: the replacing fire is the job's last, written with its claim.
    assert (state.cursor_ms, state.planned_ms, state.trigger, state.run_id, state.worker) == \
        (T0, T0, "schedule", f.run_id, "w1")
    assert kill == {"runId": "old-run", "replacedBy": f.run_id}  # its record names the new run
    assert (active.value.decode(), active.lease_id) == (f.run_id, session)
    assert (running.lease_id, RunningInfo.from_bytes(running.value).worker_id) == (session, "w1")
    assert lock is not None and lock.lease_id == lock_lease  # no other worker claims the fire


async def test_a_run_that_will_not_die_keeps_its_place(etcd_endpoint, etcd_prefix):
    ks = Keyspace(etcd_prefix)
    async with open_etcd([etcd_endpoint]) as etcd:
        session = (await etcd.grant_lease(10)).id
        lock_lease = (await etcd.grant_lease(10)).id
        await etcd.put(ks.active("rep"), "stuck-run")
        f = fire()
        replacer = Replacer(etcd, ks, "w1", SystemClock(), kill_grace_s=0.0)
        with trio.fail_after(5):  # it waits the kill grace and 2 s more, then gives up
            outcome = await replacer.replace(f, session, lock_lease)
        active = await etcd.get(ks.active("rep"))
        running = await etcd.get(ks.running("rep", f.run_id))
    assert outcome is NotReplaced.WOULD_NOT_DIE
    assert active.value == b"stuck-run" and running is None


async def test_of_two_workers_replacing_one_fire_only_one_goes_on(etcd_endpoint, etcd_prefix):
    ks = Keyspace(etcd_prefix)
    async with open_etcd([etcd_endpoint]) as etcd, trio.open_nursery() as nursery:
        session = (await etcd.grant_lease(10)).id
        lock_lease = (await etcd.grant_lease(10)).id
        await etcd.put(ks.active("rep"), "old-run")
        nursery.start_soon(dies_when_asked, etcd, ks, "rep")
        f = fire()
        outcomes = []

        async def replace(worker_id: str) -> None:
            replacer = Replacer(etcd, ks, worker_id, SystemClock(), kill_grace_s=2.0)
            outcomes.append(await replacer.replace(f, session, lock_lease))

        with trio.fail_after(5):
            async with trio.open_nursery() as both:
                both.start_soon(replace, "w1")
                both.start_soon(replace, "w2")
    assert len(outcomes) == 2
    assert Run(f, session, guarded=True) in outcomes and NotReplaced.TAKEN in outcomes
