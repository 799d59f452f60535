"""The Registrar's timing against a fake etcd on trio's mock clock (no wall time).

When etcd cannot be reached, the lease must be taken as lost FENCE_LEAD_S before one
TTL after the last renewal etcd confirmed: not later (its runs must be dead before
others may own them), not much earlier.
"""

from __future__ import annotations

import dataclasses

import trio

from actors import open_mailbox
from cluster.config import Config
from cluster.etcd import EtcdUnavailable, Lease, LeaseExpired
from cluster.keyspace import Keyspace
from worker.clock import TrioWallClock
from worker.context import WorkerContext
from worker.mailboxes import Inboxes, open_mailboxes
from worker.executor.messages import Fenced, RunningCount
from worker.log_sink.messages import Flush
from worker.registrar.actor import FENCE_LEAD_S, KILL_MARGIN_S, Registrar, RegistrarMsg
from worker.shutdown_budget import RegistrarBudget
from worker.registrar.messages import SessionChanged

TTL_S = 3
ME = "w1"
KEY = Keyspace().worker(ME)


class FakeEtcd:
    """Leases and puts in memory; every call fails while ``down``."""

    def __init__(self) -> None:
        self.down = False
        self.grant_takes_s = 0.01  # a grant answered late (a link that just came back)
        self.leases: set[int] = set()
        self.keys: dict[str, int] = {}  # key → lease id
        self.renewed_at: list[float] = []
        self.revoked_at: list[float] = []
        self._next_id = 100

    def _reach(self, operation: str) -> None:
        if self.down:
            raise EtcdUnavailable(operation, "test: etcd is down")

    async def grant_lease(self, ttl_s: int) -> Lease:
        await trio.sleep(self.grant_takes_s)
        self._reach("grant lease")
        self._next_id += 1
        self.leases.add(self._next_id)
        return Lease(self._next_id, ttl_s)

    async def keepalive_once(self, lease_id: int) -> int:
        await trio.sleep(0.01)
        self._reach("lease keepalive")
        if lease_id not in self.leases:
            raise LeaseExpired(lease_id)
        self.renewed_at.append(trio.current_time())
        return TTL_S

    async def put(self, key: str, value: bytes, *, lease_id: int = 0) -> int:
        await trio.sleep(0.01)
        self._reach(f"put {key!r}")
        if lease_id not in self.leases:
            raise LeaseExpired(lease_id)
        self.keys[key] = lease_id
        return 1

    async def revoke_lease(self, lease_id: int) -> bool:
        await trio.sleep(0.01)
        self._reach("revoke lease")
        self.revoked_at.append(trio.current_time())
        self.leases.discard(lease_id)
        self.keys = {k: v for k, v in self.keys.items() if v != lease_id}
        return True


def fake_etcd_registrar(etcd: FakeEtcd) -> tuple[Registrar, Inboxes]:
    """A Registrar on ``etcd``, its session TTL_S, its peers' inboxes to read."""
    config = dataclasses.replace(Config(), session_ttl_s=TTL_S)
    addresses, inboxes = open_mailboxes(config)
    ctx = WorkerContext(config, ME, Keyspace(), TrioWallClock(0))
    registrar = Registrar(open_mailbox[RegistrarMsg](1, name="registrar")[1], ctx, etcd,
                          log_sink=addresses.log_sink, executor=addresses.executor,
                          locker=addresses.locker)
    return registrar, inboxes


async def test_an_unreachable_etcd_fences_one_ttl_after_the_last_renewal(autojump_clock):
    etcd = FakeEtcd()
    registrar, inboxes = fake_etcd_registrar(etcd)
    executor = inboxes.executor
    async with trio.open_nursery() as nursery:
        first = await nursery.start(registrar.run)
        assert executor.receive_nowait() == SessionChanged(first)
        await trio.sleep(30)  # ten TTLs: renewed all along (nobody answers RunningCount)
        assert etcd.keys == {KEY: first} and len(etcd.renewed_at) >= 25
        etcd.down = True
        down_at = trio.current_time()
        while isinstance(msg := await executor.receive(), RunningCount):
            pass
        fenced_after_s = trio.current_time() - down_at
        last_renewal_sent = etcd.renewed_at[-1] - 0.01
        assert msg == SessionChanged(None)
        # One fence lead before the lease can have expired; the runs are SIGKILLed at
        # the latest KILL_MARGIN_S before that instant.
        assert abs(trio.current_time() - (last_renewal_sent + TTL_S - FENCE_LEAD_S)) < 1e-6
        assert TTL_S - TTL_S / 3 - FENCE_LEAD_S - 0.1 < fenced_after_s <= TTL_S - FENCE_LEAD_S
        fenced = await executor.receive()
        assert isinstance(fenced, Fenced) and fenced.lease_id == first
        assert abs(fenced.kill_within_s - (FENCE_LEAD_S - KILL_MARGIN_S)) < 1e-6
        await trio.sleep(60)  # still down: it keeps trying, with backoff
        assert registrar.statistics_detail().lease_id is None
        # The LogSink learns of the fence too (it spills what it holds at once).
        assert [inboxes.log_sink.receive_nowait() for _ in range(2)] == [
            SessionChanged(first), SessionChanged(None)]
        etcd.down = False
        while isinstance(msg := await executor.receive(), RunningCount):
            pass
        assert msg.lease_id is not None and msg.lease_id != first
        assert await inboxes.log_sink.receive() == SessionChanged(msg.lease_id)
        assert etcd.keys == {KEY: msg.lease_id}
        assert [inboxes.locker.receive_nowait() for _ in range(3)] == [
            SessionChanged(first), SessionChanged(None), SessionChanged(msg.lease_id)]
        registrar.request_stop()
    assert etcd.keys == {} and etcd.leases == {first}  # the old one was never revoked: down


async def test_a_graceful_stop_keeps_the_lease_alive_through_the_flush_then_no_renewal_races_the_revocation(
        autojump_clock):
    etcd = FakeEtcd()
    registrar, inboxes = fake_etcd_registrar(etcd)
    flush_s = RegistrarBudget().flush_s - 0.5  # within the budget; renewals are due meanwhile
    flushed: list[tuple[float, float]] = []

    async def slow_log_sink() -> None:
        while isinstance(msg := await inboxes.log_sink.receive(), SessionChanged):
            pass
        assert isinstance(msg, Flush)
        asked_at = trio.current_time()
        await trio.sleep(flush_s)
        flushed.append((asked_at, trio.current_time()))
        msg.reply.send(None)

    async with trio.open_nursery() as nursery:
        lease_id = await nursery.start(registrar.run)
        nursery.start_soon(slow_log_sink)
        await trio.sleep(TTL_S + 0.5)
        registrar.request_stop()
    (asked_at, answered_at), = flushed
    assert flush_s > TTL_S / 3
    assert any(asked_at < t < answered_at for t in etcd.renewed_at)  # alive all along
    assert etcd.revoked_at and etcd.revoked_at[0] >= answered_at
    # The keep-alive had ended before the revocation was sent: no renewal after it.
    assert max(etcd.renewed_at) < etcd.revoked_at[0] - 0.01 + 1e-9
    assert etcd.keys == {} and lease_id not in etcd.leases


async def test_a_grant_answered_late_is_vouched_for_by_a_fresh_renewal_not_fenced_at_once(
        autojump_clock):
    """A worker rejoining over a link that is slow to answer: its grant came back after
    most of a TTL. The lease was granted at some instant in between, so the grant alone
    vouches for almost nothing; a renewal sent at once does. Without it the worker
    fenced its new session right after rejoining."""
    etcd = FakeEtcd()
    etcd.grant_takes_s = TTL_S * 0.9
    registrar, inboxes = fake_etcd_registrar(etcd)
    executor = inboxes.executor
    async with trio.open_nursery() as nursery:
        first = await nursery.start(registrar.run)
        registered_at = trio.current_time()
        assert executor.receive_nowait() == SessionChanged(first)
        assert etcd.renewed_at and etcd.renewed_at[0] <= registered_at  # before it says so
        await trio.sleep(10 * TTL_S)
        seen = []
        while True:
            try:
                seen.append(executor.receive_nowait())
            except trio.WouldBlock:
                break
        assert [m for m in seen if not isinstance(m, RunningCount)] == []  # never fenced
        assert registrar.statistics_detail().lease_id == first
        registrar.request_stop()
