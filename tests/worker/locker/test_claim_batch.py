"""Group commit of claims: what gathers while a transaction is in flight goes together,
and each fire's answer is handed on by the batcher's task (no task waits per fire)."""

from __future__ import annotations

import uuid

import pytest
import trio
import trio.testing

from cluster.spec import JobSpec
from cluster.store import RunTrigger
from worker.clock import TrioWallClock
from worker.locker.claim_batch import (CHECK_GATHER_S, CLAIM_GATHER_S, ClaimBatcher, Outcome,
                                       PendingClaim, ahead_patience, distinct_jobs)
from worker.messages import Fire, Run

T0 = 1_700_000_000_000


@pytest.fixture
def autojump_clock():
    return trio.testing.MockClock(autojump_threshold=0)


def fire(name: str, planned_ms: int = T0) -> Fire:
    spec = JobSpec.from_json({"name": name, "command": "true", "cronExpr": "* * * * * *"})
    return Fire(spec, planned_ms, planned_ms, RunTrigger.SCHEDULE, uuid.uuid4().hex)


class Recorder:
    """A send_batch that takes 10 ms (a round trip) and wins every fire; and the answers
    handed on, by fire name."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.answers: dict[str, object] = {}

    async def send(self, batch: list[PendingClaim]) -> None:
        self.batches.append([p.item.spec.name for p in batch])
        await trio.sleep(0.01)
        for pending in batch:
            pending.settle(Run(pending.item, 1, False))

    async def settled(self, batch: list[PendingClaim]) -> None:
        for pending in batch:
            assert pending.item.spec.name not in self.answers  # once
            self.answers[pending.item.spec.name] = pending.result


async def test_a_lone_fire_goes_at_once_and_a_burst_gathers_behind_it(autojump_clock):
    recorder = Recorder()
    batcher = ClaimBatcher(recorder.send, recorder.settled)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(batcher.serve)
        batcher.submit(fire("alone"))
        await trio.testing.wait_all_tasks_blocked()
        for i in range(5):
            batcher.submit(fire(f"burst{i}"))
            await trio.sleep(0.001)  # in the first one's round trip
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert recorder.batches[0] == ["alone"]
    assert sorted(n for b in recorder.batches[1:] for n in b) == [f"burst{i}" for i in range(5)]
    assert len(recorder.batches) == 2  # the burst gathered behind the lone one
    assert sorted(recorder.answers) == ["alone", *(f"burst{i}" for i in range(5))]
    assert all(isinstance(r, Run) for r in recorder.answers.values())


async def test_fires_a_batch_left_undecided_are_handed_on_for_the_single_path(autojump_clock):
    recorder = Recorder()

    async def decides_one(batch: list[PendingClaim]) -> None:
        batch[0].settle(Outcome.TAKEN)  # e.g. the others' transaction was refused

    batcher = ClaimBatcher(decides_one, recorder.settled)
    batcher.submit(fire("a"))
    batcher.submit(fire("b"))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(batcher.serve)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert recorder.answers == {"a": Outcome.TAKEN, "b": Outcome.SINGLE}
    assert len(batcher) == 0


def test_a_job_appears_once_per_batch_the_others_go_alone():
    batch = [PendingClaim(fire("a", T0)), PendingClaim(fire("b", T0)),
             PendingClaim(fire("a", T0 + 1000))]
    kept = distinct_jobs(batch)
    assert [p.item.spec.name for p in kept] == ["a", "b"]
    assert batch[2].result is Outcome.SINGLE  # unsettled: the single path


@pytest.mark.parametrize(("gather_s", "ahead_ms", "batches"), [
    # 20 ms apart: the first waits 150 ms, no longer, for the next seven
    (CHECK_GATHER_S, 300, [[f"w{i}" for i in range(8)], ["w8", "w9"]]),
    (CLAIM_GATHER_S, 300, [[f"w{i}"] for i in range(10)]),  # 20 ms: beyond 5 ms
    (CHECK_GATHER_S, 65, [[f"w{i}"] for i in range(10)]),  # 50 ms must be left: 15 ms
])
async def test_fires_ahead_of_their_time_wait_for_company_while_50_ms_are_left(
        autojump_clock, gather_s, ahead_ms, batches):
    """Claim a window, not a fire (issue 14): fires handed over ahead wait up to
    ``gather_s`` for company (``ahead_patience``), and never into the last 50 ms
    before their time; without the wait, each of these went alone."""
    clock = TrioWallClock(T0)
    recorder = Recorder()
    batcher = ClaimBatcher(recorder.send, recorder.settled,
                           patience=ahead_patience(clock, gather_s))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(batcher.serve)
        assert CHECK_GATHER_S == 0.15
        for i in range(10):  # one every 20 ms, each ahead_ms before its time
            batcher.submit(fire(f"w{i}", clock.now_ms() + ahead_ms))
            await trio.sleep(0.02)
        await trio.sleep(0.2)
        nursery.cancel_scope.cancel()
    assert recorder.batches == batches
    assert sorted(recorder.answers) == [f"w{i}" for i in range(10)]


def test_a_manual_run_or_a_late_fire_never_waits():
    class Now:
        def now_ms(self) -> int:
            return T0

    patience = ahead_patience(Now(), CHECK_GATHER_S)
    assert patience(fire("s", T0 + 1000)) == CHECK_GATHER_S
    assert patience(fire("s", T0 + 70)) == pytest.approx(0.02)
    assert patience(fire("s", T0 - 10)) <= 0  # late: goes at once
    manual = Fire(fire("m").spec, T0 + 1000, T0, RunTrigger.MANUAL, uuid.uuid4().hex)
    assert patience(manual) == 0.0


class StepsOf(trio.abc.Instrument):
    """Task steps of the tasks named ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name == self.name:
            self.steps += 1


async def test_fires_that_may_wait_join_the_batch_without_waking_its_task(autojump_clock):
    """A fire submitted while the batch waits for company wakes the serving task only if
    it must go sooner than the batch would (or fills it): fifteen checks 5 ms apart cost
    the task a handful of steps, not one each, and still go in one transaction."""
    clock = TrioWallClock(T0)
    recorder = Recorder()
    batcher = ClaimBatcher(recorder.send, recorder.settled,
                           patience=ahead_patience(clock, CHECK_GATHER_S))
    steps = StepsOf("checks")
    trio.lowlevel.add_instrument(steps)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(batcher.serve, name="checks")
            await trio.testing.wait_all_tasks_blocked()
            before = steps.steps
            for i in range(15):
                batcher.submit(fire(f"c{i:02}", clock.now_ms() + 1000))
                await trio.sleep(0.005)
            batcher.submit(fire("late", clock.now_ms() + 110))  # 10 ms of patience: now
            await trio.sleep(0.5)
            nursery.cancel_scope.cancel()
    finally:
        trio.lowlevel.remove_instrument(steps)
    assert recorder.batches == [[f"c{i:02}" for i in range(15)] + ["late"]]
    assert steps.steps - before <= 6  # woken by the first, by "late", the send, the answer
