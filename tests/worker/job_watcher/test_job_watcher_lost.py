"""The runs lost with a worker, read at the revision before its key went (``LostRuns``
through the ``FleetListener``), against real etcd: exactly the runs on its lease, with
their last state; nothing for a key deleted by hand; and when that past is compacted,
or etcd does not answer, one warning and nothing reported."""

from __future__ import annotations

import logging

from etcd_history import compact
import trio

from cluster.config import Config
from cluster.etcd import Etcd, EventType, KeyValue, PrefixSnapshot, WatchEvent, open_etcd
from cluster.keyspace import Keyspace
from cluster.presence import CLAIMED, RunningInfo, WorkerInfo
from worker.clock import SystemClock
from worker.job_watcher.fleet import FleetListener
from worker.job_watcher.lost_runs import LostRuns
from worker.mailboxes import Inboxes, open_mailboxes
from worker.scheduler.messages import RunVanished

ME = "w1"


def run_of(worker_id: str, run_id: str, name: str = "a") -> RunningInfo:
    return RunningInfo(run_id, name, worker_id, planned_ms=1000, attempt=1,
                       trigger="schedule", started_ms=2000)


def listener(etcd: Etcd, ks: Keyspace) -> tuple[FleetListener, Inboxes]:
    addresses, inboxes = open_mailboxes(Config())
    fleet = FleetListener(ks, ME, locker=addresses.locker, scheduler=addresses.scheduler,
                          clock=SystemClock(), etcd=etcd)
    return fleet, inboxes


async def register(etcd: Etcd, ks: Keyspace, worker_id: str, *runs: RunningInfo,
                   running: int = 0) -> int:
    """A worker and its runs on one new lease; returns the lease."""
    lease = (await etcd.grant_lease(60)).id
    info = WorkerInfo(worker_id, host="h", pid=1, capacity=4, running=running)
    await etcd.put(ks.worker(worker_id), info.to_bytes(), lease_id=lease)
    for run in runs:
        await etcd.put(ks.running(run.job_name, run.run_id), run.to_bytes(), lease_id=lease)
    return lease


async def seen(fleet: FleetListener, etcd: Etcd, ks: Keyspace) -> None:
    """The listener reads workers/ as its mirror would at start-up."""
    await fleet.workers_read(await etcd.get_prefix(ks.workers_prefix), None)


def deletion(ks: Keyspace, worker_id: str, revision: int) -> WatchEvent:
    return WatchEvent(EventType.DELETE, KeyValue(ks.worker(worker_id), b"", 0, revision, 0, 0))


def vanished(inboxes: Inboxes) -> list[RunningInfo]:
    got = []
    while inboxes.scheduler.statistics().depth:
        msg = inboxes.scheduler.receive_nowait()
        if isinstance(msg, RunVanished):
            got.append(msg.info)
    return got


async def test_exactly_the_runs_on_the_leaving_workers_lease_are_lost(etcd, etcd_prefix):
    ks = Keyspace(etcd_prefix)
    fleet, inboxes = listener(etcd, ks)
    lost = [run_of("w2", "r1", "a"), run_of("w2", "r2", "b").with_state(CLAIMED)]
    ended = run_of("w2", "r3")  # ended while w2 lived: deleted at a revision of its own
    lease = await register(etcd, ks, "w2", *lost, ended)
    others = run_of("w3", "r4")  # another worker's run, still going
    await register(etcd, ks, "w3", others)
    await etcd.delete(ks.running(ended.job_name, ended.run_id))
    await seen(fleet, etcd, ks)
    await etcd.revoke_lease(lease)  # as an expiry: every key of it in one revision
    left = (await etcd.get_prefix(ks.workers_prefix)).revision
    await fleet.worker_event(deletion(ks, "w2", left))
    got = vanished(inboxes)
    assert sorted(got, key=lambda r: r.run_id) == lost  # each once, with its last state
    assert [r.started for r in sorted(got, key=lambda r: r.run_id)] == [True, False]
    assert (fleet.lost_runs, fleet.lost.reads, fleet.lost.untold) == (2, 1, 0)
    assert "w2" not in fleet.workers and "w2" not in fleet.leases


async def test_a_graceful_stop_leaves_only_the_runs_it_left_claimed(etcd, etcd_prefix):
    ks = Keyspace(etcd_prefix)
    fleet, inboxes = listener(etcd, ks)
    recorded, left_claimed = run_of("w2", "r1"), run_of("w2", "r2").with_state(CLAIMED)
    lease = await register(etcd, ks, "w2", recorded, left_claimed)
    await seen(fleet, etcd, ks)
    await etcd.delete(ks.running("a", "r1"))  # its record durable: released first,
    await etcd.revoke_lease(lease)  # then the lease
    revision = (await etcd.get_prefix(ks.workers_prefix)).revision
    await fleet.worker_event(deletion(ks, "w2", revision))
    assert vanished(inboxes) == [left_claimed]


async def test_our_own_runs_and_a_key_deleted_by_hand_lose_nothing(etcd, etcd_prefix, caplog):
    ks = Keyspace(etcd_prefix)
    fleet, inboxes = listener(etcd, ks)
    mine = await register(etcd, ks, ME, run_of(ME, "r1"))
    await register(etcd, ks, "w2", run_of("w2", "r2"))
    await seen(fleet, etcd, ks)
    await etcd.revoke_lease(mine)  # we lost our own session: our runs are not "lost" to us
    revision = (await etcd.get_prefix(ks.workers_prefix)).revision
    await fleet.worker_event(deletion(ks, ME, revision))
    assert fleet.lost.reads == 0  # not even read
    await etcd.delete(ks.worker("w2"))  # by hand: its lease, and its run, live on
    revision = (await etcd.get_prefix(ks.workers_prefix)).revision
    await fleet.worker_event(deletion(ks, "w2", revision))
    assert (vanished(inboxes), fleet.lost.reads, fleet.lost_runs) == ([], 1, 0)
    assert await etcd.get(ks.running("a", "r2")) is not None
    assert any("deleted while its lease" in r.getMessage() and "1 runs go on" in r.getMessage()
               for r in caplog.records if r.levelno == logging.WARNING)


async def test_a_seed_worker_leaving_costs_no_read(etcd, etcd_prefix):
    ks = Keyspace(etcd_prefix)
    fleet, inboxes = listener(etcd, ks)
    lease = (await etcd.grant_lease(60)).id
    await etcd.put(ks.worker("10.0.0.7"), b"", lease_id=lease)  # the seed's registration
    await seen(fleet, etcd, ks)
    await etcd.revoke_lease(lease)
    revision = (await etcd.get_prefix(ks.workers_prefix)).revision
    await fleet.worker_event(deletion(ks, "10.0.0.7", revision))
    assert (vanished(inboxes), fleet.lost.reads, fleet.lost.untold) == ([], 0, 0)


async def test_a_departure_read_after_its_past_was_compacted_is_said_once_not_guessed(
        etcd_factory, caplog):
    """The documented path: one warning with the count the worker last published,
    nothing reported (its keys are gone from the present too), counted untold."""
    server = etcd_factory()  # private: compaction is server-wide
    ks = Keyspace("/cron/")
    async with open_etcd([server.endpoint]) as etcd:
        fleet, inboxes = listener(etcd, ks)
        lease = await register(etcd, ks, "w2", run_of("w2", "r1"), run_of("w2", "r2"),
                               running=2)
        await seen(fleet, etcd, ks)
        await etcd.revoke_lease(lease)
        left = (await etcd.get_prefix(ks.workers_prefix)).revision
        await etcd.put("/cron/jobs/x", "{}")  # history moves on
        await trio.to_thread.run_sync(compact, server.endpoint, left + 1)
        await fleet.worker_event(deletion(ks, "w2", left))  # reached us too late
    assert (vanished(inboxes), fleet.lost_runs, fleet.lost.untold) == ([], 0, 1)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w for w in warnings if "'w2' left" in w] == [
        f"worker 'w2' left at revision {left}; whether any of 2 runs (its last count) was "
        "lost cannot be told: etcd's history before it is compacted"]


async def test_an_etcd_that_does_not_answer_bounds_the_read(etcd_factory, caplog):
    server = etcd_factory()
    ks = Keyspace("/cron/")
    # The set-up on a client with the default timeout: a fresh server's first lease
    # grant (a raft commit, an fsync) may take longer than 0.3 s on a loaded machine.
    async with open_etcd([server.endpoint]) as setup, \
            open_etcd([server.endpoint], timeout_s=0.3) as etcd:
        fleet, inboxes = listener(etcd, ks)
        fleet.lost = LostRuns(etcd, ks, ME, within_s=1.0)
        lease = await register(setup, ks, "w2", run_of("w2", "r1"))
        await seen(fleet, setup, ks)
        await setup.revoke_lease(lease)
        left = (await setup.get_prefix(ks.workers_prefix)).revision
        await trio.to_thread.run_sync(server.kill)
        started = trio.current_time()
        await fleet.worker_event(deletion(ks, "w2", left))
        waited = trio.current_time() - started
    assert 1.0 <= waited < 3.0  # retried, then given up at the bound
    assert (vanished(inboxes), fleet.lost.untold) == ([], 1)
    assert any("'w2' left" in r.getMessage() and "did not answer within 1 s" in r.getMessage()
               for r in caplog.records)


async def test_workers_gone_in_a_compaction_gap_of_their_watch_are_said_not_guessed(
        etcd, etcd_prefix, caplog):
    ks = Keyspace(etcd_prefix)
    fleet, inboxes = listener(etcd, ks)
    await register(etcd, ks, "w2")
    back = await register(etcd, ks, "w3")
    await register(etcd, ks, "w4")
    await seen(fleet, etcd, ks)
    await etcd.revoke_lease(back)
    await register(etcd, ks, "w3")  # back on a new lease: its old one ended in the gap
    await etcd.delete(ks.worker("w2"))
    snapshot = await etcd.get_prefix(ks.workers_prefix)
    await fleet.workers_read(PrefixSnapshot(snapshot.kvs, snapshot.revision), 1)
    assert fleet.lost.untold == 2 and sorted(fleet.workers) == ["w3", "w4"]
    assert any("2 workers left during a compaction gap (w2, w3)" in r.getMessage()
               for r in caplog.records if r.levelno == logging.WARNING)
    assert vanished(inboxes) == []
