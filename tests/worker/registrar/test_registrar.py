"""The Registrar against real etcd: register, stay alive past the TTL, leave, be fenced.

Wall-clock tests: etcd expires leases on its own clock. TTL 2 s keeps them short.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from actors import Inbox, open_mailbox
from cluster.config import Config
from cluster.etcd import Etcd, LeaseExpired
from cluster.keyspace import Keyspace
from cluster.presence import Serving, WorkerInfo, fleet_epoch
from worker.clock import SystemClock
from worker.context import WorkerContext
from worker.mailboxes import Inboxes, open_mailboxes
from worker.executor.messages import ExecutorMsg, Fenced, RunningCount
from worker.log_sink.messages import Flush, LogSinkMsg
from worker.registrar.actor import Registrar, RegistrarMsg
from worker.registrar.messages import SessionChanged
from worker.spill_room import SpillRoom

ME = "w1"
RUNNING = 3  # what the fake Executor answers


def make_registrar(etcd: Etcd, prefix: str, **kwargs) -> tuple[Registrar, Inboxes]:
    config = dataclasses.replace(Config(), session_ttl_s=2, capacity=7, labels={"zone": "a"})
    addresses, inboxes = open_mailboxes(config)
    ctx = WorkerContext(config, ME, Keyspace(prefix), SystemClock())
    _, inbox = open_mailbox[RegistrarMsg](1, name="registrar")
    return Registrar(inbox, ctx, etcd, log_sink=addresses.log_sink,
                     executor=addresses.executor, locker=addresses.locker, **kwargs), inboxes


@asynccontextmanager
async def fake_executor(inbox: Inbox[ExecutorMsg]) -> AsyncIterator[trio.MemoryReceiveChannel]:
    """Answers RunningCount; yields a channel of every other message it received."""
    send, receive = trio.open_memory_channel[ExecutorMsg](100)

    async def serve() -> None:
        async for msg in inbox:
            if isinstance(msg, RunningCount):
                msg.reply.send(RUNNING)
            else:
                send.send_nowait(msg)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        yield receive
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def fake_log_sink(inbox: Inbox[LogSinkMsg], etcd: Etcd, key: str) -> AsyncIterator[list]:
    """Answers Flush; yields a list of whether the worker's key still existed at each."""
    flushes: list[bool] = []

    async def serve() -> None:
        async for msg in inbox:
            if isinstance(msg, Flush):
                flushes.append(await etcd.get(key) is not None)
                msg.reply.send(None)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        yield flushes
        nursery.cancel_scope.cancel()


async def receive(source, timeout_s: float = 10.0):
    with trio.fail_after(timeout_s):
        return await source.receive()


async def test_registers_its_info_on_a_lease_then_leaves_at_once_on_a_graceful_stop(
        etcd, etcd_prefix):
    registrar, inboxes = make_registrar(etcd, etcd_prefix)
    key = Keyspace(etcd_prefix).worker(ME)
    async with fake_executor(inboxes.executor) as executor, \
            fake_log_sink(inboxes.log_sink, etcd, key) as flushes:
        async with trio.open_nursery() as nursery:
            lease_id = await nursery.start(registrar.run)
            kv = await etcd.get(key)
            assert kv is not None and kv.lease_id == lease_id
            info = WorkerInfo.from_bytes(kv.value)
            assert (info.worker_id, info.host, info.pid, dict(info.labels), info.capacity) == (
                ME, socket.gethostname(), os.getpid(), {"zone": "a"}, 7)
            assert info.version and abs(info.wall_ms - SystemClock().now_ms()) < 5000
            assert inboxes.locker.receive_nowait() == SessionChanged(lease_id)
            assert await receive(executor) == SessionChanged(lease_id)
            registrar.request_stop()
        # run() returned: the worker is gone now, not a TTL later...
        assert await etcd.get(key) is None
        # ...and only after its run records were flushed, while it was still registered.
        assert flushes == [True]
        with pytest.raises(LeaseExpired):
            await etcd.lease_ttl(lease_id)


async def test_keeps_its_lease_alive_past_the_ttl_and_republishes(etcd, etcd_prefix):
    registrar, inboxes = make_registrar(etcd, etcd_prefix)
    key = Keyspace(etcd_prefix).worker(ME)
    async with fake_executor(inboxes.executor), fake_log_sink(inboxes.log_sink, etcd, key):
        async with trio.open_nursery() as nursery:
            lease_id = await nursery.start(registrar.run)
            first = WorkerInfo.from_bytes((await etcd.get(key)).value)
            await trio.sleep(5)  # 2.5 TTLs of wall time
            kv = await etcd.get(key)
            assert kv is not None and kv.lease_id == lease_id
            info = WorkerInfo.from_bytes(kv.value)
            assert info.running == RUNNING  # asked of the Executor at each republish
            assert info.wall_ms > first.wall_ms and info.started_ms == first.started_ms
            stats = registrar.statistics_detail()
            assert (stats.lease_id, stats.registrations, stats.fenced) == (lease_id, 1, 0)
            registrar.request_stop()


async def test_publishes_the_spill_rooms_state_at_each_republication(etcd, etcd_prefix):
    """``spill: disk full`` reaches the master through the registration (ttl/3 late)."""
    room = SpillRoom()
    registrar, inboxes = make_registrar(etcd, etcd_prefix, problems=room.problems)
    key = Keyspace(etcd_prefix).worker(ME)

    async def published() -> tuple[str, ...]:
        return WorkerInfo.from_bytes((await etcd.get(key)).value).problems

    async with fake_executor(inboxes.executor), fake_log_sink(inboxes.log_sink, etcd, key):
        async with trio.open_nursery() as nursery:
            await nursery.start(registrar.run)
            assert await published() == ()
            room.refused(OSError(errno.ENOSPC, "No space left on device"), kept=1)
            await trio.sleep(2 / 3 + 0.5)  # one renewal interval (ttl 2 s), and its put
            assert await published() == ("spill: disk full",)
            room.has_room("the run store took the records")
            await trio.sleep(2 / 3 + 0.5)
            assert await published() == ()
            registrar.request_stop()


async def test_publishes_serving_only_when_given_and_its_changes_at_each_republication(
        etcd, etcd_prefix):
    """Shards (issue 14): ``serving`` is absent by default (a cluster with shards off
    sees the registration of earlier releases); given, each publication carries the
    membership its slots are loaded for at that moment."""
    loaded: list[Serving | None] = [None]
    registrar, inboxes = make_registrar(etcd, etcd_prefix, serving=lambda: loaded[0])
    plain, plain_inboxes = make_registrar(etcd, etcd_prefix)
    key = Keyspace(etcd_prefix).worker(ME)

    async def published() -> tuple[Serving | None, bytes]:
        raw = (await etcd.get(key)).value
        return WorkerInfo.from_bytes(raw).serving, raw

    async with fake_executor(plain_inboxes.executor), \
            fake_log_sink(plain_inboxes.log_sink, etcd, key):
        async with trio.open_nursery() as nursery:
            await nursery.start(plain.run)
            serving, raw = await published()
            assert serving is None and b"serving" not in raw
            plain.request_stop()
    async with fake_executor(inboxes.executor), fake_log_sink(inboxes.log_sink, etcd, key):
        async with trio.open_nursery() as nursery:
            await nursery.start(registrar.run)
            serving, raw = await published()
            assert serving is None and b"serving" not in raw
            loaded[0] = Serving(fleet_epoch([ME, "w2"]), 2)
            await trio.sleep(2 / 3 + 0.5)  # one renewal interval (ttl 2 s), and its put
            assert (await published())[0] == Serving(fleet_epoch([ME, "w2"]), 2)
            loaded[0] = Serving(fleet_epoch([ME]), 1, leaving=True)
            await trio.sleep(2 / 3 + 0.5)
            assert (await published())[0] == Serving(fleet_epoch([ME]), 1, leaving=True)
            registrar.request_stop()


async def test_a_change_of_serving_is_published_at_once_not_at_the_next_renewal(
        etcd, etcd_prefix):
    """A join or a leave waits on the others' publications (DESIGN §6b): the Registrar
    publishes a change of ``serving`` as soon as the worker's ``ShardState`` says so."""
    from cluster.shard_settings import ShardSettings
    from worker.shards import ShardState
    shards = ShardState(ME, {}, ShardSettings(64, 2))
    config = dataclasses.replace(Config(), session_ttl_s=30)  # renewals every 10 s
    addresses, inboxes = open_mailboxes(config)
    ctx = WorkerContext(config, ME, Keyspace(etcd_prefix), SystemClock())
    _, inbox = open_mailbox[RegistrarMsg](1, name="registrar")
    registrar = Registrar(inbox, ctx, etcd, log_sink=addresses.log_sink,
                          executor=addresses.executor, locker=addresses.locker,
                          serving=shards.serving, serving_changed=shards.wait_changed)
    key = Keyspace(etcd_prefix).worker(ME)

    async def published() -> Serving | None:
        return WorkerInfo.from_bytes((await etcd.get(key)).value).serving

    async with fake_executor(inboxes.executor), fake_log_sink(inboxes.log_sink, etcd, key):
        async with trio.open_nursery() as nursery:
            await nursery.start(registrar.run)
            assert await published() is None  # not loaded yet: the others do not count it
            shards.loaded()
            with trio.fail_after(1):
                while await published() != Serving(fleet_epoch([ME]), 1):
                    await trio.sleep(0.02)
            shards.leave()
            with trio.fail_after(1):
                while await published() != Serving(fleet_epoch([ME]), 1, leaving=True):
                    await trio.sleep(0.02)
            registrar.request_stop()


async def test_a_lease_revoked_behind_its_back_fences_the_runs_then_it_registers_anew(
        etcd, etcd_prefix):
    registrar, inboxes = make_registrar(etcd, etcd_prefix)
    key = Keyspace(etcd_prefix).worker(ME)
    async with fake_executor(inboxes.executor) as executor, \
            fake_log_sink(inboxes.log_sink, etcd, key):
        async with trio.open_nursery() as nursery:
            old = await nursery.start(registrar.run)
            assert await receive(executor) == SessionChanged(old)
            assert inboxes.locker.receive_nowait() == SessionChanged(old)
            await etcd.revoke_lease(old)
            assert await receive(executor) == SessionChanged(None)
            assert await receive(executor) == Fenced(old, 0.0)  # gone: SIGKILL at once
            new = (await receive(executor)).lease_id
            assert new is not None and new != old
            assert [await receive(inboxes.locker) for _ in range(2)] == [
                SessionChanged(None), SessionChanged(new)]
            kv = await etcd.get(key)
            assert kv is not None and kv.lease_id == new
            assert registrar.statistics_detail().fenced == 1
            registrar.request_stop()
