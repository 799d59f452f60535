"""Group commit's patience, under a mock clock: a request that can wait holds its batch
open for company until the most impatient member's deadline, never longer."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from worker.group_commit import GroupQueue, Pending


@pytest.fixture
def autojump_clock():
    return trio.testing.MockClock(autojump_threshold=0)


async def test_patient_requests_share_a_batch_and_an_impatient_one_sends_it(autojump_clock):
    # Each item is its own patience in seconds.
    queue = GroupQueue[float, str](100, unsettled="none", max_batch=10, patience=lambda s: s)
    sent: list[tuple[float, list[float]]] = []

    async def send(batch: list[Pending[float, str]]) -> None:
        sent.append((trio.current_time(), [p.item for p in batch]))
        for p in batch:
            p.settle("ok")

    async def submit_at(t: float, patience: float) -> None:
        await trio.sleep_until(t)
        assert await queue.submit(patience) == "ok"

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.serve, send)
        for t, patience in [(0.0, 0.05), (0.01, 0.05), (0.02, 0.0),  # the third sends at once
                            (0.1, 0.05), (0.12, 0.5),  # sent at 0.15, the first one's deadline
                            (0.3, -1.0)]:  # no patience: alone, at once
            nursery.start_soon(submit_at, start + t, patience)
        await trio.sleep(1)
        queue.close()
    assert [(round(t - start, 3), items) for t, items in sent] == [
        (0.02, [0.05, 0.05, 0.0]), (0.15, [0.05, 0.5]), (0.3, [-1.0])]


async def test_without_patience_a_lone_request_goes_at_once(autojump_clock):
    queue = GroupQueue[int, int](10, unsettled=-1, max_batch=10)
    times: list[float] = []

    async def send(batch: list[Pending[int, int]]) -> None:
        times.append(trio.current_time())
        for p in batch:
            p.settle(p.item * 2)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.serve, send)
        start = trio.current_time()
        assert await queue.submit(21) == 42
        queue.close()
    assert times == [start]


async def test_a_request_whose_submitter_gave_up_is_left_out_of_its_batch(autojump_clock):
    queue = GroupQueue[str, str](10, unsettled="none", max_batch=10, patience=lambda _: 0.1)
    sent: list[list[str]] = []

    async def send(batch: list[Pending[str, str]]) -> None:
        sent.append([p.item for p in batch])
        for p in batch:
            p.settle("ok")

    async def give_up(item: str) -> None:
        with trio.move_on_after(0.05):  # e.g. its run was killed while its mark waited
            await queue.submit(item)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.serve, send)
        nursery.start_soon(give_up, "killed")
        assert await queue.submit("kept") == "ok"
        queue.close()
    assert sent == [["kept"]]


async def test_submit_nowait_is_answered_by_a_callback_in_the_serving_task(autojump_clock):
    queue = GroupQueue[int, int](10, unsettled=-1, max_batch=10)
    answered: list[tuple[int, trio.lowlevel.Task]] = []
    server: list[trio.lowlevel.Task] = []

    async def send(batch: list[Pending[int, int]]) -> None:
        await trio.sleep(0.1)
        for p in batch:
            p.settle(p.item * 2)

    async def serve() -> None:
        server.append(trio.lowlevel.current_task())
        await queue.serve(send)

    def on_settle(result: int) -> None:
        answered.append((result, trio.lowlevel.current_task()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        queue.submit_nowait(21, on_settle)
        cancelled = queue.submit_nowait(5, on_settle)
        await trio.sleep(0.05)  # both in flight
        cancelled.cancel()  # e.g. its run ended first: answered, but not to it
        await trio.sleep(1)
        queue.close()
    assert answered == [(42, server[0])]


async def test_submit_nowait_refuses_when_the_queue_is_full_and_a_cancelled_one_is_not_sent(
        autojump_clock):
    queue = GroupQueue[str, str](2, unsettled="none", max_batch=10)
    sent: list[list[str]] = []

    async def send(batch: list[Pending[str, str]]) -> None:
        sent.append([p.item for p in batch])
        for p in batch:
            p.settle("ok")

    answered: list[str] = []
    queue.submit_nowait("a", answered.append)
    queue.submit_nowait("b", answered.append).cancel()  # before its batch went
    with pytest.raises(trio.WouldBlock):
        queue.submit_nowait("c", answered.append)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.serve, send)
        await trio.sleep(1)
        queue.close()
    assert sent == [["a"]] and answered == ["ok"]


async def test_a_batch_left_undecided_answers_its_callbacks_with_unsettled(autojump_clock):
    queue = GroupQueue[str, str](10, unsettled="retry", max_batch=10)

    batches: list[int] = []

    async def send(batch: list[Pending[str, str]]) -> None:
        batches.append(len(batch))  # decides nothing (as when etcd is unreachable)

    answered: list[str] = []
    queue.submit_nowait("a", answered.append)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.serve, send)
        await trio.sleep(1)
        queue.close()
    assert batches == [1] and answered == ["retry"]
