"""Group commit of claims: what gathers while a transaction is in flight goes together."""

from __future__ import annotations

import uuid

import pytest
import trio
import trio.testing

from cluster.spec import JobSpec
from cluster.store import RunTrigger
from worker.group_commit import Pending
from worker.clock import TrioWallClock
from worker.locker.claim_batch import (CHECK_GATHER_S, CLAIM_GATHER_S, BatchQueue, Outcome,
                                       ahead_patience, distinct_jobs)
from worker.messages import Fire, Run

T0 = 1_700_000_000_000


@pytest.fixture
def autojump_clock():
    return trio.testing.MockClock(autojump_threshold=0)


def fire(name: str, planned_ms: int = T0) -> Fire:
    spec = JobSpec.from_json({"name": name, "command": "true", "cronExpr": "* * * * * *"})
    return Fire(spec, planned_ms, planned_ms, RunTrigger.SCHEDULE, uuid.uuid4().hex)


class Recorder:
    """A send_batch that takes 10 ms (a round trip) and wins every fire."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def send(self, batch: list[Pending]) -> None:
        self.batches.append([p.item.spec.name for p in batch])
        await trio.sleep(0.01)
        for pending in batch:
            pending.settle(Run(pending.item, 1, False))


async def test_a_lone_fire_goes_at_once_and_a_burst_gathers_behind_it(autojump_clock):
    queue, recorder = BatchQueue(100), Recorder()
    results: dict[str, object] = {}

    async def claim(name: str) -> None:
        results[name] = await queue.submit(fire(name))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.serve, recorder.send)
        await claim("alone")
        for i in range(5):
            nursery.start_soon(claim, f"burst{i}")
        await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(0.1)
        queue.close()
    assert recorder.batches[0] == ["alone"]
    assert sorted(n for b in recorder.batches[1:] for n in b) == [f"burst{i}" for i in range(5)]
    assert len(recorder.batches) <= 3  # the first of the burst alone, the rest together
    assert all(isinstance(r, Run) for r in results.values())


async def test_below_the_minimum_a_fire_is_handed_back_for_the_single_path(autojump_clock):
    queue, recorder = BatchQueue(10), Recorder()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: queue.serve(recorder.send, min_batch=2))
        assert await queue.submit(fire("a")) is Outcome.SINGLE
        queue.close()
    assert recorder.batches == []


async def test_fires_left_unsettled_by_a_failed_batch_go_the_single_path(autojump_clock):
    queue = BatchQueue(10)
    got: dict[str, object] = {}

    async def failing(batch: list[Pending]) -> None:
        batch[0].settle(Outcome.TAKEN)
        raise RuntimeError("etcd said no")

    async def claim(name: str) -> None:
        with trio.CancelScope(shield=True):  # the answer must arrive despite the crash
            got[name] = await queue.submit(fire(name))

    with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="etcd said no")):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(claim, "a")
            nursery.start_soon(claim, "b")
            await trio.testing.wait_all_tasks_blocked()  # both queued: one batch
            nursery.start_soon(queue.serve, failing)
    # The first fire in the batch was settled; the other is handed back, not lost.
    assert sorted(got) == ["a", "b"]
    assert sorted(o.value for o in got.values()) == ["single", "taken"]


def test_a_job_appears_once_per_batch_the_others_go_alone():
    batch = [Pending(fire("a", T0), Outcome.SINGLE), Pending(fire("b", T0), Outcome.SINGLE),
             Pending(fire("a", T0 + 1000), Outcome.SINGLE)]
    kept = distinct_jobs(batch)
    assert [p.item.spec.name for p in kept] == ["a", "b"]
    assert batch[2].done.is_set() and batch[2].result is Outcome.SINGLE


@pytest.mark.parametrize(("gather_s", "ahead_ms", "batches"), [
    # 20 ms apart: the first waits 50 ms, no longer, for the next two
    (CHECK_GATHER_S, 300, [["w0", "w1", "w2"], ["w3", "w4"]]),
    (CLAIM_GATHER_S, 300, [["w0"], ["w1"], ["w2"], ["w3"], ["w4"]]),  # 20 ms: beyond 5 ms
    (CHECK_GATHER_S, 120, [["w0"], ["w1"], ["w2"], ["w3"], ["w4"]]),  # 100 ms must be left
])
async def test_fires_ahead_of_their_time_wait_for_company_while_100_ms_are_left(
        autojump_clock, gather_s, ahead_ms, batches):
    """Claim a window, not a fire (issue 14): fires handed over ahead wait up to
    ``gather_s`` for company (``ahead_patience``), and never into the last 100 ms
    before their time; without the wait, each of these went alone."""
    clock = TrioWallClock(T0)
    queue, recorder = BatchQueue(100, patience=ahead_patience(clock, gather_s)), Recorder()

    async def claim(name: str, planned_ms: int) -> None:
        await queue.submit(fire(name, planned_ms))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.serve, recorder.send)
        for i in range(5):  # one every 20 ms, each ahead_ms before its time
            nursery.start_soon(claim, f"w{i}", clock.now_ms() + ahead_ms)
            await trio.sleep(0.02)
        await trio.sleep(0.2)
        queue.close()
    assert recorder.batches == batches


def test_a_manual_run_or_a_late_fire_never_waits():
    class Now:
        def now_ms(self) -> int:
            return T0

    patience = ahead_patience(Now(), CHECK_GATHER_S)
    assert patience(fire("s", T0 + 1000)) == CHECK_GATHER_S
    assert patience(fire("s", T0 + 120)) == pytest.approx(0.02)
    assert patience(fire("s", T0 - 10)) <= 0  # late: goes at once
    manual = Fire(fire("m").spec, T0 + 1000, T0, RunTrigger.MANUAL, uuid.uuid4().hex)
    assert patience(manual) == 0.0
