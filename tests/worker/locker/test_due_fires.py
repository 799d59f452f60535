"""The Locker's due fires (issue 14): every wait is an entry in one heap that one task
serves; no fire has a task of its own. The heap alone, then a Locker whose claim
transport is a fake that answers after a round trip, under an autojump MockClock."""

from __future__ import annotations

import dataclasses
import math
import uuid

import pytest
import trio
import trio.testing

from fire_kit import one_per_fire
from mailbox_kit import queued

from cluster.config import Config
from cluster.etcd import EtcdUnavailable
from cluster.keyspace import Keyspace
from cluster.presence import WorkerInfo
from cluster.spec import JobSpec
from cluster.store import RunTrigger
from worker.clock import TrioWallClock
from worker.context import WorkerContext
from worker.locker import actor as locker_actor
from worker.locker.claim_batch import Outcome, PendingClaim
from worker.locker.claim_order import fire_key
from worker.locker.due_fires import DueFires
from worker.locker.messages import Claim, WorkersChanged
from worker.locker.placement import rank_of
from worker.mailboxes import open_mailboxes
from worker.messages import Fire, Run
from worker.registrar.messages import SessionChanged
from worker.scheduler.messages import Granted

T0 = 1_700_000_000_000
ROUND_TRIP_S = 0.01
STEP_S = 0.1
WORKERS = tuple(WorkerInfo(w, "h", 1) for w in ("w1", "w2"))


@pytest.fixture
def autojump_clock():
    return trio.testing.MockClock(autojump_threshold=0)


# -- the heap alone -------------------------------------------------------------------

async def test_the_heap_acts_on_each_entry_at_its_time_earliest_first(autojump_clock):
    due: DueFires[str] = DueFires()
    acted: list[tuple[str, float]] = []
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(due.serve, lambda e: acted.append((e, trio.current_time() - start)))
        due.push(start + 0.3, "late")
        due.push(start + 0.1, "early")
        await trio.sleep(0.05)
        due.push(start + 0.07, "earlier, pushed while it slept")  # wakes the server
        due.push(start, "now")
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert acted == [("now", pytest.approx(0.05)),
                     ("earlier, pushed while it slept", pytest.approx(0.07)),
                     ("early", pytest.approx(0.1)), ("late", pytest.approx(0.3))]
    assert len(due) == 0


async def test_a_tick_shares_wake_ups_and_never_acts_before_an_entry_is_due(autojump_clock):
    """With ``tick_s`` the server wakes on multiples of it: entries due within one tick
    are acted on together, each at or after its time, never more than a tick after."""
    due: DueFires[int] = DueFires(tick_s=0.04)
    acted: list[tuple[int, float]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(due.serve, lambda e: acted.append((e, trio.current_time())))
        base = math.ceil(trio.current_time() / 0.04) * 0.04 + 1.0  # on a tick
        for i in range(10):  # one every 10 ms from the tick on
            due.push(base + 0.001 + i * 0.01, i)
        await trio.sleep(2)
        nursery.cancel_scope.cancel()
    planned = {i: base + 0.001 + i * 0.01 for i in range(10)}
    assert [i for i, _ in acted] == list(range(10))
    assert all(planned[i] <= at < planned[i] + 0.04 for i, at in acted)
    assert len({at for _, at in acted}) == 3  # 10 entries over 91 ms: 3 wake-ups


def test_clear_takes_out_every_entry_due_or_not():
    due: DueFires[str] = DueFires()
    due.push(2.0, "b")
    due.push(1.0, "a")
    assert due.pop_due(0.5) == []
    assert due.clear() == ["a", "b"]
    assert len(due) == 0 and due.next_at == float("inf")


# -- the Locker's fires ---------------------------------------------------------------

class FakeEtcd:
    leader_answered_at = None  # the quorum watch then polls has_quorum

    async def has_quorum(self) -> bool:
        return True


class FakeTransport:
    """Answers after a round trip: a fire in ``taken`` is another worker's, any other is
    won; ``claim_once`` first fails ``unavailable`` times. Every call noted, with its
    trio time from ``start``."""

    def __init__(self, *args, session, **kwargs) -> None:
        self._session = session
        self.start = trio.current_time()
        self.calls: list[tuple[str, str, float]] = []
        self.taken: set[str] = set()
        self.unavailable = 0
        self.round_trip_s = ROUND_TRIP_S

    def _note(self, what: str, fire: Fire) -> None:
        self.calls.append((what, fire.spec.name, round(trio.current_time() - self.start, 3)))

    async def claim_batch(self, batch: list[PendingClaim]) -> None:
        for p in batch:
            self._note("claim_batch", p.item)
        await trio.sleep(self.round_trip_s)
        for p in batch:
            p.settle(Outcome.TAKEN if p.item.run_id in self.taken
                     else Run(p.item, self._session(), False))

    async def check_batch(self, batch: list[PendingClaim]) -> None:
        for p in batch:
            self._note("check_batch", p.item)
        await trio.sleep(self.round_trip_s)
        for p in batch:
            if p.item.run_id in self.taken:
                p.settle(Outcome.TAKEN)

    async def claim_once(self, fire: Fire, session: int, *, timeout_s=None,
                         again: bool = False) -> Run | Outcome:
        self._note("claim_once", fire)
        await trio.sleep(self.round_trip_s)
        if self.unavailable:
            self.unavailable -= 1
            raise EtcdUnavailable("txn", "no answer")
        if fire.run_id in self.taken:
            return Outcome.TAKEN
        return Run(fire, session, fire.spec.concurrency != "allow")


def fire_ranked(rank: int, *, concurrency: str = "allow", name: str = "job") -> Fire:
    """A fire due now whose rank for w1 is ``rank`` (of two workers)."""
    clock_ms = T0
    for i in range(1000):
        spec = JobSpec.from_json({"name": f"{name}{i}", "command": "true",
                                  "cronExpr": "* * * * * *", "concurrency": concurrency})
        fire = Fire(spec, clock_ms, clock_ms, RunTrigger.SCHEDULE, uuid.uuid4().hex)
        if rank_of("w1", {}, fire_key(fire), WORKERS, {}) == rank:
            return fire
    raise AssertionError("no such fire")


class Harness:
    def __init__(self, locker, transport: FakeTransport, to_locker, to_scheduler) -> None:
        self.locker = locker
        self.transport = transport
        self.to_locker = to_locker
        self.to_scheduler = to_scheduler

    def granted(self) -> list[str]:
        return [m.run.fire.spec.name for m in one_per_fire(queued(self.to_scheduler)) if isinstance(m, Granted)]


async def start_locker(nursery: trio.Nursery, monkeypatch, **config) -> Harness:
    monkeypatch.setattr(locker_actor, "ClaimTransport", FakeTransport)
    monkeypatch.setattr(locker_actor, "DUE_TICK_S", 0.0)  # exact times: the tick has its test
    cfg = dataclasses.replace(Config(), **{"claim_step_s": STEP_S, **config})
    peers, inboxes = open_mailboxes(cfg)
    ctx = WorkerContext(cfg, "w1", Keyspace("/t/"), TrioWallClock(T0))
    locker = locker_actor.Locker(inboxes.locker, ctx, FakeEtcd(), scheduler=peers.scheduler,
                                 executor=peers.executor)
    await nursery.start(locker.run)
    await peers.locker.send(SessionChanged(7))
    await peers.locker.send(WorkersChanged(WORKERS))
    await trio.testing.wait_all_tasks_blocked()
    transport = locker._transport  # noqa: SLF001 (the fake)
    transport.start = trio.current_time()
    return Harness(locker, transport, peers.locker, inboxes.scheduler)


async def test_a_first_choice_claims_at_once_and_a_backup_checks_at_its_rank_step(
        autojump_clock, monkeypatch):
    first, backup = fire_ranked(0, name="first"), fire_ranked(1, name="backup")
    async with trio.open_nursery() as nursery:
        h = await start_locker(nursery, monkeypatch)
        await h.to_locker.send(Claim(first))
        await h.to_locker.send(Claim(backup))
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    # The backup's check at its step finds the fire free: it claims it alone.
    assert h.transport.calls == [("claim_batch", first.spec.name, 0.0),
                                 ("check_batch", backup.spec.name, STEP_S),
                                 ("claim_once", backup.spec.name, STEP_S + ROUND_TRIP_S)]
    assert sorted(h.granted()) == sorted([first.spec.name, backup.spec.name])
    stats = h.locker.statistics_detail()
    assert (stats.won, stats.taken, stats.in_flight) == (2, 0, 0)


async def test_a_fire_seen_taken_is_never_claimed_by_the_backup(autojump_clock, monkeypatch):
    backup = fire_ranked(1)
    async with trio.open_nursery() as nursery:
        h = await start_locker(nursery, monkeypatch)
        h.transport.taken.add(backup.run_id)  # the first choice won it
        await h.to_locker.send(Claim(backup))
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert [c[0] for c in h.transport.calls] == ["check_batch"]  # a read, no claim
    assert h.granted() == []
    stats = h.locker.statistics_detail()
    assert (stats.won, stats.taken, stats.in_flight) == (0, 1, 0)


async def test_a_claim_etcd_did_not_answer_is_tried_again_from_the_heap_within_its_grace(
        autojump_clock, monkeypatch):
    guarded = fire_ranked(0, concurrency="forbid")  # the single path: a claim alone
    async with trio.open_nursery() as nursery:
        h = await start_locker(nursery, monkeypatch)
        h.transport.unavailable = 2
        await h.to_locker.send(Claim(guarded))
        await trio.sleep(2)
        nursery.cancel_scope.cancel()
    times = [t for what, _, t in h.transport.calls]
    assert [what for what, _, _ in h.transport.calls] == ["claim_once"] * 3
    # Backoff 0.1 s, then 0.2 s (jitter shortens each by up to 20 %), after each answer.
    assert 0.079 <= times[1] - times[0] - ROUND_TRIP_S <= 0.101
    assert 0.159 <= times[2] - times[1] - ROUND_TRIP_S <= 0.201
    assert h.granted() == [guarded.spec.name]
    stats = h.locker.statistics_detail()
    assert (stats.won, stats.retries, stats.failed, stats.in_flight) == (1, 2, 0, 0)


async def test_a_claim_etcd_never_answers_is_missed_at_the_end_of_its_grace(
        autojump_clock, monkeypatch):
    guarded = fire_ranked(0, concurrency="forbid")
    async with trio.open_nursery() as nursery:
        h = await start_locker(nursery, monkeypatch, misfire_grace_s=1.0)
        h.transport.unavailable = 1000
        await h.to_locker.send(Claim(guarded))
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    assert max(t for _, _, t in h.transport.calls) < 1.0  # never tried after the grace
    assert h.granted() == []
    stats = h.locker.statistics_detail()
    assert (stats.won, stats.failed, stats.in_flight) == (0, 1, 0)
    assert stats.retries == len(h.transport.calls) - 1


async def test_a_stop_drops_the_waits_and_lets_a_claim_in_its_transaction_finish(
        autojump_clock, monkeypatch):
    first, backup = fire_ranked(0, name="first"), fire_ranked(1, name="backup")
    async with trio.open_nursery() as nursery:
        h = await start_locker(nursery, monkeypatch, claim_step_s=5.0)
        h.transport.round_trip_s = 0.5
        await h.to_locker.send(Claim(first))
        await h.to_locker.send(Claim(backup))
        await trio.sleep(0.1)  # the first choice's claim in its transaction
        assert h.locker.statistics_detail().in_flight == 2
        h.locker.request_stop()
    stopped_s = trio.current_time() - h.transport.start
    assert stopped_s == pytest.approx(0.5)  # the transaction's end, not the backup's 5 s
    assert [c[0] for c in h.transport.calls] == ["claim_batch"]  # the backup never checked
    assert h.granted() == [first.spec.name]
    assert h.locker.statistics_detail().in_flight == 0


class Spawned(trio.abc.Instrument):
    def __init__(self) -> None:
        self.names: list[str] = []

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.names.append(task.name)


async def test_no_task_is_spawned_per_fire(autojump_clock, monkeypatch):
    """Issue 14: a claim was a task of its own on every worker (a backup's slept its
    rank's step). First choices and backups, taken or free, spread or together: the
    fires that a batch decides spawn no task at all."""
    fires = [fire_ranked(i % 2, name=f"f{i}-") for i in range(40)]
    spawned = Spawned()
    async with trio.open_nursery() as nursery:
        h = await start_locker(nursery, monkeypatch)
        h.transport.taken.update(f.run_id for f in fires[1::2])  # the backups' fires
        trio.lowlevel.add_instrument(spawned)
        try:
            for i, f in enumerate(fires):
                await h.to_locker.send(Claim(f))
                await trio.sleep(0.01 if i < 20 else 0)  # spread, then a burst
            await trio.sleep(1)
        finally:
            trio.lowlevel.remove_instrument(spawned)
        nursery.cancel_scope.cancel()
    assert spawned.names == []
    assert len(h.granted()) == 20
    stats = h.locker.statistics_detail()
    assert (stats.won, stats.taken, stats.in_flight) == (20, 20, 0)


async def test_at_most_mailbox_size_fires_are_in_flight_and_the_sender_waits_beyond(
        autojump_clock, monkeypatch):
    """Backpressure, not loss: with ``mailbox_size`` fires undecided the Locker stops
    reading its mailbox; once it is full too, the Scheduler's send waits."""
    fires = [fire_ranked(0, name=f"bp{i}-") for i in range(12)]
    sent = 0
    granted: list[str] = []
    async with trio.open_nursery() as nursery:
        h = await start_locker(nursery, monkeypatch, mailbox_size=4)
        h.transport.round_trip_s = 1.0

        async def scheduler() -> None:
            nonlocal sent
            for f in fires:
                await h.to_locker.send(Claim(f))
                sent += 1

        async def grants() -> None:  # the Scheduler reads its mailbox (of 4) meanwhile
            async for msg in h.to_scheduler:
                granted.extend(m.run.fire.spec.name for m in one_per_fire([msg]))

        nursery.start_soon(scheduler)
        nursery.start_soon(grants)
        await trio.sleep(0.5)  # the first batch in its transaction
        assert h.locker.statistics_detail().in_flight == 4
        assert sent == 9  # 4 in flight, 1 in hand (waiting for a slot), 4 in the mailbox
        await trio.sleep(20)  # a batch a second, of the fires taken meanwhile
        nursery.cancel_scope.cancel()
    assert sent == len(fires)
    assert sorted(granted) == sorted(f.spec.name for f in fires)
    assert h.locker.statistics_detail().in_flight == 0
