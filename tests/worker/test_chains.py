"""Job chains in the worker: the Scheduler stamps fires with the jobs chained after
them, the end mark writes their triggers exactly once (real etcd), and a lost run's
triggers go with its lost key."""

from __future__ import annotations

import trio
import trio.testing
import pytest

from cluster.keyspace import Keyspace
from cluster.presence import ENDED, STARTED, RunningInfo
from cluster.spec import JobSpec
from cluster.store import RunRecord, RunStatus, RunTrigger
from worker import chains
from worker.claims import claim_ops
from worker.locker.messages import ClaimLost
from worker.messages import Fire, Run, Upstream
from worker.scheduler.messages import JobDeleted, JobSaved, JobsSnapshot, RunVanished, TriggerRequested

from scheduler.test_scheduler import T0, Harness, spec

A = spec("A", "@yearly")
A_ALLOW = spec("A", "@yearly", concurrency="allow")  # no active/ guard between its runs
B_OK = JobSpec.from_json({"name": "b-ok", "command": "true", "after": {"job": "A"}})
B_ANY = spec("b-any", "@yearly", after={"job": "A", "on": "completed"})
B_FAIL = spec("b-fail", "@yearly", after={"job": "A", "on": "failed"})


@pytest.fixture
def autojump_clock():
    return trio.testing.MockClock(autojump_threshold=0)


def test_the_index_follows_saves_and_deletes_and_never_keeps_a_self_chain():
    index = chains.ChainIndex()
    index.replace_all([A, B_OK, B_ANY])
    assert index.links("A") == (("b-any", "completed"), ("b-ok", "succeeded"))
    index.saved(spec("b-ok", "@yearly", after={"job": "other"}))  # moved to another job
    assert index.links("A") == (("b-any", "completed"),)
    assert index.links("other") == (("b-ok", "succeeded"),)
    index.deleted("b-any")
    assert index.links("A") == ()
    index.saved(spec("self", "@yearly", after={"job": "self"}))  # only by-passing the master
    assert index.links("self") == ()


def test_a_chained_run_id_is_fixed_by_the_pair_and_its_trigger_names_the_upstream():
    assert chains.chain_run_id("b", "r1") == chains.chain_run_id("b", "r1")
    assert len({chains.chain_run_id("b", "r1"), chains.chain_run_id("c", "r1"),
                chains.chain_run_id("b", "r2")}) == 3
    up = Upstream("A", "r1", "failed")
    assert chains.parse_upstream(chains.trigger_value(up, T0)) == up
    assert chains.parse_upstream(b'{"requestedAt": 1}') is None  # a run now
    assert chains.parse_upstream(b"not json") is None


async def test_fires_carry_their_downstream_jobs_and_a_chain_trigger_is_a_chained_run(
        autojump_clock):
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        await h.send(JobsSnapshot((A, B_OK, B_ANY), 1, {}))
        await h.send(JobSaved(B_FAIL))
        await h.send(JobDeleted("b-any"))
        await h.send(TriggerRequested("A", "run-1", T0))
        up = Upstream("A", "run-1", "succeeded")
        await h.send(TriggerRequested("b-ok", "run-2", T0, up))
        got = await h.claims_until(T0 + 1_000)
        nursery.cancel_scope.cancel()
    [(a, _), (b, _)] = got
    assert a.fire.chains == (("b-fail", "failed"), ("b-ok", "succeeded"))
    assert (a.fire.trigger, a.fire.upstream) == (RunTrigger.MANUAL, None)
    assert (b.fire.trigger, b.fire.run_id, b.fire.upstream) == (RunTrigger.CHAIN, "run-2", up)
    assert b.fire.chains == ()


@pytest.mark.parametrize("state", [STARTED, ENDED])
async def test_a_lost_run_triggers_its_chains_unless_it_had_ended(autojump_clock, state):
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        await h.send(JobsSnapshot((A, B_OK, B_FAIL), 1, {}))
        info = RunningInfo("run-4", "A", "dead", T0, 1, "schedule", T0, state)
        await h.send(RunVanished(info))
        got = await h.claims_until(T0 + 1_000)
        nursery.cancel_scope.cancel()
    links = (("b-fail", "failed"), ("b-ok", "succeeded")) if state == STARTED else ()
    assert [msg for msg, _ in got] == [ClaimLost(info, links)]


def _record(fire: Fire, status: RunStatus) -> RunRecord:
    return RunRecord(fire.run_id, fire.spec.name, "w1", "true", "", "", 0, status,
                     fire.trigger, 1, fire.planned_ms, fire.planned_ms, T0, T0 + 1)


async def _claimed(etcd, ks: Keyspace, fire: Fire) -> Run:
    lease = await etcd.grant_lease(30)
    compares, ops = claim_ops(ks, fire, "w1", session=lease.id, lock_lease=lease.id, now_ms=T0)
    assert (await etcd.txn(compares, ops)).succeeded
    return Run(fire, lease.id, False)


async def test_the_end_mark_writes_the_matching_triggers_once(etcd, etcd_prefix):
    ks = Keyspace(etcd_prefix)
    links = (("b-any", "completed"), ("b-fail", "failed"), ("b-ok", "succeeded"))
    fire = Fire(A_ALLOW, T0, T0, RunTrigger.SCHEDULE, "up-1", chains=links)
    run = await _claimed(etcd, ks, fire)
    end = _record(fire, RunStatus.TIMEOUT)
    await chains.mark_ended(etcd, ks, "w1", lambda: T0, run, end)
    triggers = await etcd.get_prefix(ks.trigger_prefix)
    assert sorted(ks.parse_trigger(kv.key) for kv in triggers.kvs) == sorted([
        ("b-any", chains.chain_run_id("b-any", "up-1")),
        ("b-fail", chains.chain_run_id("b-fail", "up-1")),
    ])
    assert {chains.parse_upstream(kv.value) for kv in triggers.kvs} == {
        Upstream("A", "up-1", "timeout")}
    running = await etcd.get(ks.running("A", "up-1"))
    assert RunningInfo.from_bytes(running.value).state == ENDED
    assert running.lease_id == run.session_lease

    # A chained run consumed its trigger; the end written again (a lost answer, a
    # second writer) must not bring it back.
    await etcd.delete(ks.trigger("b-any", chains.chain_run_id("b-any", "up-1")))
    await chains.mark_ended(etcd, ks, "w1", lambda: T0 + 5, run, end)
    compares, ops = chains.end_mark_ops(ks, run, "w1", end, T0 + 9)
    assert not (await etcd.txn(compares, ops)).succeeded
    assert len((await etcd.get_prefix(ks.trigger_prefix)).kvs) == 1

    # A run whose key went with its lease: the survivors' to trigger, not ours.
    gone = Fire(A_ALLOW, T0 + 1000, T0, RunTrigger.SCHEDULE, "up-2", chains=links)
    gone_run = await _claimed(etcd, ks, gone)
    await etcd.revoke_lease(gone_run.session_lease)
    await chains.mark_ended(etcd, ks, "w1", lambda: T0, gone_run, _record(gone, RunStatus.SUCCEEDED))
    assert len((await etcd.get_prefix(ks.trigger_prefix)).kvs) == 1


@pytest.mark.parametrize(("links", "status"), [
    ((), RunStatus.SUCCEEDED),  # nothing runs after the job
    ((("b-any", "completed"),), RunStatus.LOST),  # left claimed at a stop, or fenced
    ((("b-any", "completed"),), RunStatus.SKIPPED),
])
async def test_no_end_mark_when_there_is_nothing_of_ours_to_end(etcd, etcd_prefix, links, status):
    ks = Keyspace(etcd_prefix)
    fire = Fire(A_ALLOW, T0 + 2000, T0, RunTrigger.SCHEDULE, "up-3", chains=links)
    run = await _claimed(etcd, ks, fire)
    before = await etcd.get(ks.running("A", "up-3"))
    await chains.mark_ended(etcd, ks, "w1", lambda: T0, run, _record(fire, status))
    after = await etcd.get(ks.running("A", "up-3"))
    assert after.mod_revision == before.mod_revision  # not one write more: still claimed
    assert not (await etcd.get_prefix(ks.trigger_prefix)).kvs


def test_a_lost_runs_triggers_match_on_failed_and_completed():
    ks = Keyspace("/cron/")
    links = (("b-any", "completed"), ("b-fail", "failed"), ("b-ok", "succeeded"))
    ops = chains.lost_chain_ops(ks, links, "A", "up-9", T0)
    assert sorted(op.key for op in ops) == sorted([
        ks.trigger("b-any", chains.chain_run_id("b-any", "up-9")),
        ks.trigger("b-fail", chains.chain_run_id("b-fail", "up-9")),
    ])
    assert all(op.lease_id == 0 for op in ops)  # no lease: they wait for a worker
