"""A claim that etcd does not answer is tried again within the fire's misfire grace:
run once if etcd comes back in time, missed (never run late) if it does not. Against
a private etcd this test stops and starts again."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
import uuid
from contextlib import asynccontextmanager

import trio

from fire_kit import one_per_fire
from mailbox_kit import queued

from cluster.config import Config
from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.presence import WorkerInfo
from cluster.spec import JobSpec
from cluster.store import RunTrigger
from worker import claims
from worker.clock import SystemClock
from worker.context import WorkerContext
from worker.locker.actor import Locker
from worker.locker.messages import Claim, WorkersChanged
from worker.mailboxes import open_mailboxes
from worker.messages import Fire
from worker.registrar.messages import SessionChanged
from worker.scheduler.messages import Granted


def fire_now(name: str) -> Fire:
    spec = JobSpec.from_json({"name": name, "command": "true", "cronExpr": "* * * * * *",
                              "concurrency": "allow"})
    now_ms = time.time_ns() // 1_000_000
    return Fire(spec, now_ms, now_ms, RunTrigger.SCHEDULE, uuid.uuid4().hex)


@asynccontextmanager
async def lone_locker(etcd, cfg: Config, ks: Keyspace):
    """One worker's Locker with a session, the only worker listed; cancelled after."""
    peers, inboxes = open_mailboxes(cfg)
    ctx = WorkerContext(cfg, "w1", ks, SystemClock())
    locker = Locker(inboxes.locker, ctx, etcd, scheduler=peers.scheduler,
                    executor=peers.executor)
    async with trio.open_nursery() as nursery:
        await nursery.start(locker.run)
        await peers.locker.send(SessionChanged((await etcd.grant_lease(30)).id))
        await peers.locker.send(WorkersChanged((WorkerInfo("w1", "h", 1),)))
        yield locker, peers.locker, inboxes.scheduler
        nursery.cancel_scope.cancel()


async def claim_through_an_outage(etcd_factory, prefix: str, *, grace_s: float,
                                  down_s: float):
    """One worker's Locker claims a fire while its only etcd is down for ``down_s``."""
    server = etcd_factory()
    cfg = dataclasses.replace(Config(), misfire_grace_s=grace_s)
    ks = Keyspace(prefix)
    async with open_etcd([server.endpoint], timeout_s=5.0) as etcd:
        async with lone_locker(etcd, cfg, ks) as (locker, to_locker, to_scheduler):
            server.kill()
            fire = fire_now("retried")
            await to_locker.send(Claim(fire))
            await trio.sleep(down_s)
            await trio.to_thread.run_sync(server.start)
            await trio.sleep(grace_s + 1.5)  # past the grace: nothing is claimed late
            replies = one_per_fire(queued(to_scheduler))
            stats = locker.statistics_detail()
        lock = await etcd.get(claims.lock_key(ks, fire))
        running = await etcd.get(ks.running(fire.spec.name, fire.run_id))
    return fire, replies, lock, running, stats


async def test_a_claim_etcd_did_not_answer_is_tried_again_and_runs_once(etcd_factory, etcd_prefix):
    fire, replies, lock, running, stats = await claim_through_an_outage(
        etcd_factory, etcd_prefix, grace_s=5.0, down_s=1.5)
    grants = [m for m in replies if isinstance(m, Granted)]
    assert [g.run.fire.run_id for g in grants] == [fire.run_id]  # granted, once
    assert lock is not None and fire.run_id.encode() in lock.value
    assert running is not None
    assert stats.won == 1 and stats.failed == 0
    assert stats.retries >= 1  # the claim_retries_total metric


async def test_a_claim_failing_past_its_grace_is_missed_not_run_late(etcd_factory, etcd_prefix):
    fire, replies, lock, running, stats = await claim_through_an_outage(
        etcd_factory, etcd_prefix, grace_s=1.0, down_s=2.5)
    assert [m for m in replies if isinstance(m, Granted)] == []
    assert lock is None and running is None  # nobody claimed it after its grace
    assert stats.won == 0 and stats.failed == 1  # claims_total{result="failed"}
    assert stats.retries >= 1


async def test_a_claim_through_a_follower_when_the_leader_dies_is_won_within_the_grace(
        etcd_cluster_factory, etcd_prefix):
    """The claim goes to a follower, which forwards it to a leader that is SIGKILLed: no
    answer ever comes (etcd waits for the request's deadline). The Locker cuts the
    attempt short, reads the running key back and claims again once a leader is elected."""
    cluster = etcd_cluster_factory()
    leader = cluster.leader()
    followers = [m.endpoint for m in cluster.members if m is not leader]
    cfg = Config()
    ks = Keyspace(etcd_prefix)
    async with open_etcd([*followers, leader.endpoint], timeout_s=5.0) as etcd:
        async with lone_locker(etcd, cfg, ks) as (locker, to_locker, to_scheduler):
            # A follower's channel is up; the lock lease is not granted yet: its grant
            # meets the election too.
            await etcd.get("/warm-up")
            assert etcd.statistics().preferred_endpoint == followers[0]
            fire = fire_now("through-a-follower")
            cluster.kill(leader)
            killed = time.monotonic()
            await to_locker.send(Claim(fire))
            with trio.fail_after(cfg.misfire_grace_s):
                granted = await to_scheduler.receive()
            took_s = time.monotonic() - killed
            await trio.sleep(1.0)
            later = one_per_fire(queued(to_scheduler))
            stats = locker.statistics_detail()
    assert isinstance(granted, Granted) and granted.run.fire.run_id == fire.run_id
    assert later == []  # once
    assert stats.won == 1 and stats.failed == 0 and stats.retries >= 1
    print(f"leader killed: claim granted after {took_s:.2f} s, {stats.retries} retries")
    assert took_s < 4.0, took_s


async def test_a_claim_whose_answer_was_lost_is_ours_once(etcd_factory, etcd_prefix):
    """etcd freezes (SIGSTOP) with the claim in its socket: the attempt's deadline
    passes, the answer is lost. Once thawed, etcd applies the claim (and the reads sent
    since, in any order): whether the read-back or the claim sent again learns it, the
    claim is ours, granted once, and its running key is not left behind unclaimed."""
    server = etcd_factory()
    cfg = Config()
    ks = Keyspace(etcd_prefix)
    async with open_etcd([server.endpoint], timeout_s=5.0) as etcd:
        async with lone_locker(etcd, cfg, ks) as (locker, to_locker, to_scheduler):
            await etcd.grant_lease(5)  # the channel is up
            fire = fire_now("answer-lost")
            os.kill(server.process.pid, signal.SIGSTOP)
            try:
                await to_locker.send(Claim(fire))
                await trio.sleep(1.5)  # the 1 s attempt is over: its answer is lost
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
            with trio.fail_after(cfg.misfire_grace_s):
                granted = await to_scheduler.receive()
            await trio.sleep(1.0)
            later = one_per_fire(queued(to_scheduler))
            stats = locker.statistics_detail()
        lock = await etcd.get(claims.lock_key(ks, fire))
    assert isinstance(granted, Granted) and granted.run.fire.run_id == fire.run_id
    assert later == []
    assert lock is not None and lock.value == claims.lock_value(fire, "w1")
    assert stats.won == 1 and stats.failed == 0 and stats.taken == 0


async def test_a_claim_whose_grace_ends_without_a_leader_is_a_quorum_loss_not_an_error(
        etcd_cluster_factory, etcd_prefix, caplog):
    """Two of three members down: the one left answers without a leader. A claim whose
    grace ends before the Locker has judged that (no leader for LOST_AFTER_S) waits for
    the judgement: missed to the lost quorum, counted, said once by the state's line,
    not by an error line of its own (on a loaded machine, that judgement can come
    after the grace of fires claimed around the loss)."""
    caplog.set_level(logging.WARNING)
    cluster = etcd_cluster_factory()
    cfg = dataclasses.replace(Config(), misfire_grace_s=1.5)
    ks = Keyspace(etcd_prefix)
    async with open_etcd(cluster.endpoints, timeout_s=5.0) as etcd:
        async with lone_locker(etcd, cfg, ks) as (locker, to_locker, to_scheduler):
            await to_locker.send(Claim(fire_now("before")))  # as in a running fleet:
            with trio.fail_after(10):                         # a lock lease is held
                while locker.statistics_detail().won < 1:
                    await trio.sleep(0.05)
            leader = await trio.to_thread.run_sync(cluster.wait_leader)
            for member in cluster.members:
                if member is not leader:
                    cluster.kill(member)
            with trio.fail_after(10):
                while await trio.to_thread.run_sync(cluster.knows_leader) is not False:
                    await trio.sleep(0.05)
            # At once: the grace (1.5 s: an attempt, then a read back) ends before the
            # Locker's watch (polling every QUORUM_POLL_S) can judge it, 2 s after.
            assert not locker.statistics_detail().quorum_lost
            await to_locker.send(Claim(fire_now("leaderless")))
            with trio.fail_after(15):
                while (s := locker.statistics_detail()).no_quorum + s.failed < 1:
                    await trio.sleep(0.1)
            replies = one_per_fire(queued(to_scheduler))
            stats = locker.statistics_detail()
    assert [m.run.fire.spec.name for m in replies if isinstance(m, Granted)] == ["before"]
    assert stats.quorum_lost and stats.no_quorum == 1 and stats.failed == 0
    assert "misfire grace" not in caplog.text
    assert caplog.text.count("etcd: no quorum") == 1
