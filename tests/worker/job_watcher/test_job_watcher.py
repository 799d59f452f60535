"""The JobWatcher against real etcd: what each prefix's changes become, for which peer."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from etcd_history import compact
import pytest
import trio

from actors import Inbox, open_mailbox
from cluster.config import Config
from cluster.etcd import Etcd, open_etcd
from cluster.keyspace import Keyspace, encode_kill_value
from cluster.presence import CLAIMED, RunningInfo, WorkerInfo
from cluster.spec import JobSpec
from cluster.store import RunStatus
from worker.clock import SystemClock
from worker.context import WorkerContext
from worker.mailboxes import Inboxes, open_mailboxes
from worker.executor.messages import KillRun
from worker.job_watcher.actor import JobWatcher, JobWatcherMsg
from worker.locker.messages import WorkersChanged
from worker.scheduler.messages import (
    JobDeleted,
    JobSaved,
    JobsSnapshot,
    RunVanished,
    TriggerRequested,
)

ME = "w1"


def job(name: str, **fields: object) -> str:
    return json.dumps({"name": name, "command": "true", "cronExpr": "* * * * *", **fields})


def kill(name: str, run_id: str | None = None) -> KillRun:
    return KillRun(name, run_id, RunStatus.KILLED, "kill requested")


def worker(worker_id: str) -> WorkerInfo:
    return WorkerInfo(worker_id, host="h", pid=1, capacity=4)


def run_of(worker_id: str, run_id: str, name: str = "a") -> RunningInfo:
    return RunningInfo(run_id, name, worker_id, planned_ms=1000, attempt=1,
                       trigger="schedule", started_ms=2000)


def make_watcher(etcd: Etcd, prefix: str, **settings: object) -> tuple[JobWatcher, Inboxes]:
    config = dataclasses.replace(Config(), **settings)
    addresses, inboxes = open_mailboxes(config)
    ctx = WorkerContext(config, ME, Keyspace(prefix), SystemClock())
    _, inbox = open_mailbox[JobWatcherMsg](1, name="job-watcher")
    watcher = JobWatcher(inbox, ctx, etcd, scheduler=addresses.scheduler,
                         executor=addresses.executor, locker=addresses.locker)
    return watcher, inboxes


@asynccontextmanager
async def running(watcher: JobWatcher) -> AsyncIterator[None]:
    """Start the watcher (its first reads delivered), stop it gracefully afterwards."""
    async with trio.open_nursery() as nursery:
        await nursery.start(watcher.run)
        yield
        watcher.request_stop()


async def receive(inbox: Inbox, timeout_s: float = 10.0):
    with trio.fail_after(timeout_s):
        return await inbox.receive()


async def next_of(inbox: Inbox, kind: type, timeout_s: float = 10.0):
    """The next message of ``kind``, skipping others (e.g. WorkersChanged)."""
    with trio.fail_after(timeout_s):
        while not isinstance(msg := await inbox.receive(), kind):
            pass
        return msg


# -- start-up ---------------------------------------------------------------------------


async def test_prefixes_start_one_after_another_and_the_watcher_after_the_last(etcd, etcd_prefix):
    """The Locker knows the fleet before the Scheduler gets its table, and triggers come
    after the table: while the Locker is full, start-up waits at workers/ and nothing of
    jobs/ or trigger/ is delivered."""
    ks = Keyspace(etcd_prefix)
    await etcd.put(ks.job("a"), job("a"))
    await etcd.put(ks.trigger("a", "r0"), "")
    watcher, inboxes = make_watcher(etcd, etcd_prefix, mailbox_size=1)
    inboxes.locker.address.send_nowait(WorkersChanged(()))  # full: the workers/ read waits
    started = trio.Event()

    async def start(nursery: trio.Nursery) -> None:
        await nursery.start(watcher.run)
        started.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(start, nursery)
        with trio.fail_after(10):
            while inboxes.locker.statistics().senders_waiting == 0:
                await trio.sleep(0.01)
        await trio.sleep(0.3)  # time enough for a prefix that did not wait its turn
        assert (started.is_set(), inboxes.scheduler.statistics().depth) == (False, 0)
        assert inboxes.locker.receive_nowait() == WorkersChanged(())
        assert await receive(inboxes.locker) == WorkersChanged(())  # the read of workers/
        assert isinstance(await receive(inboxes.scheduler), JobsSnapshot)
        trigger = await receive(inboxes.scheduler)  # room for one: after the snapshot
        assert isinstance(trigger, TriggerRequested) and trigger.run_id == "r0"
        with trio.fail_after(10):
            await started.wait()
        watcher.request_stop()


# -- jobs/ ----------------------------------------------------------------------------


async def test_start_up_delivers_a_snapshot_then_live_saves_and_deletes(etcd, etcd_prefix):
    ks = Keyspace(etcd_prefix)
    await etcd.put(ks.job("a"), job("a"))
    put_revision = await etcd.put(ks.state("a"), "1700000000000")
    await etcd.put(ks.state("b"), "yesterday")  # not a time: ignored
    watcher, inboxes = make_watcher(etcd, etcd_prefix)
    async with running(watcher):
        snapshot = inboxes.scheduler.receive_nowait()  # started ⇒ already delivered
        assert isinstance(snapshot, JobsSnapshot)
        assert snapshot.specs == (JobSpec.from_json(job("a")),)
        assert dict(snapshot.last_fired_ms) == {"a": 1700000000000}
        assert snapshot.revision >= put_revision
        await etcd.put(ks.job("b"), job("b", command="echo hi"))
        saved = await receive(inboxes.scheduler)
        assert saved == JobSaved(JobSpec.from_json(job("b", command="echo hi")))
        await etcd.delete(ks.job("a"))
        assert await receive(inboxes.scheduler) == JobDeleted("a")
    assert watcher.statistics_detail().jobs_snapshots == 1


async def test_an_invalid_spec_is_logged_and_unscheduled_without_a_crash(etcd, etcd_prefix, caplog):
    caplog.set_level(logging.WARNING, logger="worker.job_watcher")
    ks = Keyspace(etcd_prefix)
    await etcd.put(ks.job("good"), job("good"))
    await etcd.put(ks.job("broken"), "{not json")
    watcher, inboxes = make_watcher(etcd, etcd_prefix)
    async with running(watcher):
        snapshot = inboxes.scheduler.receive_nowait()
        assert [s.name for s in snapshot.specs] == ["good"]
        # Saved again with a bad expression: its older version must stop running.
        await etcd.put(ks.job("good"), job("good", cronExpr="61 * * * *"))
        assert await receive(inboxes.scheduler) == JobDeleted("good")
        await etcd.put(ks.job("alias"), job("other"))  # a spec under another job's key
        assert await receive(inboxes.scheduler) == JobDeleted("alias")
        await etcd.put(ks.job("later"), job("later"))  # still watching
        assert await receive(inboxes.scheduler) == JobSaved(JobSpec.from_json(job("later")))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'broken'" in w and "job: invalid JSON" in w for w in warnings), warnings
    assert any("'good'" in w and "cronExpr:" in w for w in warnings), warnings
    assert any("'alias'" in w and "'other' differs from its key" in w for w in warnings), warnings
    assert watcher.statistics_detail().invalid_specs == 3


async def test_after_a_compaction_a_fresh_snapshot_makes_the_table_converge(etcd_factory):
    server = etcd_factory()  # private: compaction is server-wide
    ks = Keyspace("/cron/")
    async with open_etcd([server.endpoint]) as etcd:
        await etcd.put(ks.job("a"), job("a"))
        await etcd.put(ks.job("b"), job("b"))
        watcher, inboxes = make_watcher(etcd, ks.prefix, mailbox_size=1)
        scheduler = inboxes.scheduler
        scheduler.address.send_nowait(JobDeleted("placeholder"))  # full: the watcher waits
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watcher.run)
            with trio.fail_after(10):  # paused after its first read, before it watches
                while scheduler.statistics().senders_waiting == 0:
                    await trio.sleep(0.01)
            await etcd.delete(ks.job("a"))
            await etcd.put(ks.job("c"), job("c"))
            latest = await etcd.put(ks.job("b"), job("b", command="echo new"))
            await trio.to_thread.run_sync(compact, server.endpoint, latest)

            assert await receive(scheduler) == JobDeleted("placeholder")
            stale = await receive(scheduler)
            assert [s.name for s in stale.specs] == ["a", "b"]
            fresh = await receive(scheduler)
            assert isinstance(fresh, JobsSnapshot) and fresh.revision >= latest
            assert [(s.name, s.command) for s in fresh.specs] == [("b", "echo new"), ("c", "true")]
            await etcd.put(ks.job("d"), job("d"))  # and it follows on from the new read
            assert await receive(scheduler) == JobSaved(JobSpec.from_json(job("d")))
            stats = watcher.statistics_detail()
            assert (stats.jobs_snapshots, stats.compactions >= 1) == (2, True)
            watcher.request_stop()


# -- killer/ and trigger/ ---------------------------------------------------------------


async def test_kill_requests_reach_the_executor(etcd, etcd_prefix):
    ks = Keyspace(etcd_prefix)
    await etcd.put(ks.killer("old"), "kill")  # before start-up: about runs older than us
    watcher, inboxes = make_watcher(etcd, etcd_prefix)
    async with running(watcher):
        await etcd.put(ks.killer("a"), "kill")  # the seed's plain value: every run
        assert await receive(inboxes.executor) == kill("a")
        await etcd.put(ks.killer("a"), "not json")  # logged and ignored
        await etcd.put(ks.killer("b"), encode_kill_value("r1"))
        assert await receive(inboxes.executor) == kill("b", "r1")
        await etcd.delete(ks.killer("b"))  # a kill key expiring asks for nothing
        await etcd.put(ks.killer("c"), encode_kill_value())
        assert await receive(inboxes.executor) == kill("c")
        # concurrency replace: the run is to end ``replaced``, its note naming its successor
        await etcd.put(ks.killer("d"), encode_kill_value("r2", replaced_by="r3"))
        assert await receive(inboxes.executor) == KillRun(
            "d", "r2", RunStatus.REPLACED, "replaced by run r3 (concurrency replace)")
        assert inboxes.executor.statistics().depth == 0


async def test_triggers_are_delivered_once_including_those_made_before_start_up(etcd, etcd_prefix):
    ks = Keyspace(etcd_prefix)
    await etcd.put(ks.trigger("a", "r0"), "")  # asked while no worker watched
    watcher, inboxes = make_watcher(etcd, etcd_prefix)
    clock = SystemClock()
    async with running(watcher):
        assert isinstance(inboxes.scheduler.receive_nowait(), JobsSnapshot)
        early = inboxes.scheduler.receive_nowait()
        assert (early.name, early.run_id) == ("a", "r0")
        before_ms = clock.now_ms()
        await etcd.put(ks.trigger("a", "r1"), "")
        live = await receive(inboxes.scheduler)
        assert isinstance(live, TriggerRequested) and (live.name, live.run_id) == ("a", "r1")
        assert before_ms <= live.requested_ms <= clock.now_ms()
        await etcd.put(ks.trigger("a", "r1"), "again")  # rewritten: not a new request
        await etcd.delete(ks.trigger("a", "r1"))  # claimed by somebody
        await etcd.put(ks.trigger("b", "r2"), "")
        assert (await receive(inboxes.scheduler)).run_id == "r2"


# -- workers/, and the runs lost with one -----------------------------------------------


async def test_the_locker_hears_of_every_change_to_the_fleet(etcd, etcd_prefix):
    ks = Keyspace(etcd_prefix)
    await etcd.put(ks.worker("w0"), worker("w0").to_bytes())
    watcher, inboxes = make_watcher(etcd, etcd_prefix)
    async with running(watcher):
        locker = inboxes.locker
        assert locker.receive_nowait() == WorkersChanged((worker("w0"),))
        await etcd.put(ks.worker("w5"), worker("w5").to_bytes())
        assert await receive(locker) == WorkersChanged((worker("w0"), worker("w5")))
        await etcd.put(ks.worker("w2"), worker("w2").to_bytes())
        assert await receive(locker) == WorkersChanged((worker("w0"), worker("w2"), worker("w5")))
        await etcd.put(ks.worker("w5"), "garbage")  # unreadable: not eligible
        assert await receive(locker) == WorkersChanged((worker("w0"), worker("w2")))
        await etcd.delete(ks.worker("w0"))
        assert await receive(locker) == WorkersChanged((worker("w2"),))


async def test_a_seed_worker_is_never_a_placement_target(etcd, etcd_prefix, caplog):
    # The seed's worker registers workers/<its IP> with an empty value; it never claims.
    ks = Keyspace(etcd_prefix)
    await etcd.put(ks.worker("10.0.0.7"), b"")
    await etcd.put(ks.worker("w0"), worker("w0").to_bytes())
    watcher, inboxes = make_watcher(etcd, etcd_prefix)
    async with running(watcher):
        assert inboxes.locker.receive_nowait() == WorkersChanged((worker("w0"),))
        await etcd.put(ks.worker("10.0.0.8"), b"")
        assert await receive(inboxes.locker) == WorkersChanged((worker("w0"),))
    assert not [r for r in caplog.records if r.levelname == "WARNING" and "10.0.0" in r.message]


async def test_clocks_are_learnt_from_publications_seen_as_they_happen(etcd, etcd_prefix):
    """A read's values may be seconds old: they teach nothing. A watch event's do."""
    ks = Keyspace(etcd_prefix)
    now_ms = SystemClock().now_ms()
    stale = dataclasses.replace(worker("w0"), wall_ms=now_ms - 3_000)  # published 3 s ago
    await etcd.put(ks.worker("w0"), stale.to_bytes())
    watcher, inboxes = make_watcher(etcd, etcd_prefix)
    async with running(watcher):
        locker = inboxes.locker
        assert locker.receive_nowait().offsets_ms == {ME: 0}
        ahead = dataclasses.replace(worker("w5"), wall_ms=SystemClock().now_ms() + 3_000)
        await etcd.put(ks.worker("w5"), ahead.to_bytes())
        offsets = (await receive(locker)).offsets_ms
        assert offsets.keys() == {ME, "w5"} and 2_500 <= offsets["w5"] <= 3_000, offsets
        await etcd.delete(ks.worker("w5"))
        assert (await receive(locker)).offsets_ms == {ME: 0}


async def die(etcd: Etcd, ks: Keyspace, worker_id: str, *runs: RunningInfo) -> None:
    """A worker registered with runs in progress whose lease then ends at once."""
    lease = await etcd.grant_lease(60)
    await etcd.put(ks.worker(worker_id), worker(worker_id).to_bytes(), lease_id=lease.id)
    for info in runs:
        await etcd.put(ks.running(info.job_name, info.run_id), info.to_bytes(), lease_id=lease.id)
    await etcd.revoke_lease(lease.id)  # as an expiry: every key of it in one revision


async def test_runs_that_vanish_with_their_worker_are_reported_once_each(etcd, etcd_prefix):
    ks = Keyspace(etcd_prefix)
    watcher, inboxes = make_watcher(etcd, etcd_prefix)
    async with running(watcher):
        # One that may have started, one whose command was never committed to start.
        lost = [run_of("w2", "r1", "a"), run_of("w2", "r2", "b").with_state(CLAIMED)]
        mine = run_of(ME, "r3")  # our own run on that lease, say: never ours to claim
        await die(etcd, ks, "w2", *lost, mine)
        got = [await next_of(inboxes.scheduler, RunVanished),
               await next_of(inboxes.scheduler, RunVanished)]
        assert sorted(m.info.run_id for m in got) == ["r1", "r2"]
        assert {m.info for m in got} == set(lost)  # with their last state
        assert [m.info.started for m in sorted(got, key=lambda m: m.info.run_id)] == [True, False]


async def test_runs_that_end_normally_or_in_a_graceful_shutdown_are_not_lost(etcd, etcd_prefix):
    ks = Keyspace(etcd_prefix)
    watcher, inboxes = make_watcher(etcd, etcd_prefix)
    async with running(watcher):
        lease = await etcd.grant_lease(60)
        await etcd.put(ks.worker("w2"), worker("w2").to_bytes(), lease_id=lease.id)
        ended, drained = run_of("w2", "r1"), run_of("w2", "r2")
        for info in (ended, drained):
            await etcd.put(ks.running("a", info.run_id), info.to_bytes(), lease_id=lease.id)
        await etcd.delete(ks.running("a", "r1"))  # a run that ended
        await etcd.delete(ks.running("a", "r2"))  # a graceful shutdown: runs first,
        await etcd.revoke_lease(lease.id)  # then the lease
        marker = run_of("w3", "r9")
        await die(etcd, ks, "w3", marker)  # both streams pass here after the above
        assert await next_of(inboxes.scheduler, RunVanished) == RunVanished(marker)
        stats = watcher.statistics_detail()
        assert (stats.lost_runs, stats.lost_reads, stats.lost_untold) == (1, 2, 0)
    # Nobody watches running/: a run's release costs no worker a watch event.
    assert not [m for m in watcher._mirrors if m.prefix.startswith(ks.running_prefix())]
