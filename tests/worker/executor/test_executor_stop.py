"""The Executor's stop: graceful (runs finish or are killed, then marks, then releases)
and abrupt (cancelled: groups killed, records offered)."""

from __future__ import annotations

import time

import trio

from cluster.store import RunStatus
from executor_testkit import WAIT_S, Harness, executor, make_run, read_fifo
from test_process import wait_group_gone
from worker.executor.messages import StartRun
from worker.shutdown_budget import ExecutorBudget


async def test_graceful_stop_lets_short_runs_finish_and_kills_long_ones_after_the_grace(fifo):
    short = make_run("short", "sleep 0.2; echo finished")
    long = make_run("long", f"echo $$ > {fifo}; sleep 300")
    h = Harness(shutdown_grace_s=1.0)
    with trio.fail_after(WAIT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(h.executor.run)
            await h.send(StartRun(short))
            await h.send(StartRun(long))
            pgid = int(await read_fifo(fifo))
            stop_at = time.monotonic()
            h.executor.request_stop()
        stopped_after = time.monotonic() - stop_at  # run() returned: drained
    records = await h.records(2)
    assert records[short.fire.run_id].status is RunStatus.SUCCEEDED
    assert records[long.fire.run_id].status is RunStatus.KILLED
    assert "worker shutting down" in records[long.fire.run_id].err
    assert 0.9 < stopped_after < 3
    await wait_group_gone(pgid, within_s=1.0)


async def test_runs_queued_when_the_stop_came_are_left_to_another_worker_unstarted():
    run = make_run("late", "echo should not run")
    h = Harness()
    async with trio.open_nursery() as nursery:
        await nursery.start(h.executor.run)
        h.peers.executor.send_nowait(StartRun(run))  # no checkpoint before the stop
        h.executor.request_stop()
    record = await h.record()
    # Lost, so its running key is not released: it goes with the session lease, still
    # claimed, and a survivor runs the fire (whose record then replaces this one).
    assert record.status is RunStatus.LOST and record.start_time is None
    assert "left for another worker" in record.err and record.output == ""
    assert h.released == [run]  # its guard, if it holds one, is given back
    assert h.marks.asked == []  # never marked started: a survivor may run it


async def test_cancelled_executor_kills_its_groups_and_offers_records(fifo):
    run = make_run("abrupt", f"echo $$ > {fifo}; sleep 300")
    h = Harness()
    async with trio.open_nursery() as nursery:
        await nursery.start(h.executor.run)
        await h.send(StartRun(run))
        pgid = int(await read_fifo(fifo))
        nursery.cancel_scope.cancel()
    await wait_group_gone(pgid, within_s=1.0)
    record = await h.record()
    assert record.run_id == run.fire.run_id and record.status is RunStatus.KILLED
    assert "stopped abruptly" in record.err


async def test_scheduler_gone_during_shutdown_is_tolerated():
    async with executor() as h:
        h.inboxes.scheduler.close()
        h.inboxes.locker.close()
        # A failed run: its RunEnded is told, to a Scheduler that is gone.
        await h.send(StartRun(make_run("alone", "echo ok; exit 3")))
        record = await h.record()
        await h.runs_over()
        assert await h.running() == 0
    assert record.status is RunStatus.FAILED and record.output == "ok\n"


async def test_a_graceful_stop_settles_the_runs_then_stops_marking_then_waits_for_releases():
    budget = ExecutorBudget(jobs_s=5.0, kill_s=1.0, release_wait_s=0.5)
    h = Harness(budget=budget)
    h.release_hangs = True
    run = make_run("finishing", "sleep 0.3; echo done")
    with trio.fail_after(WAIT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(h.executor.run)
            await h.send(StartRun(run))
            assert await h.running() == 1  # taken: a StartRun queued at the stop is left
            stop_at = trio.current_time()
            h.executor.request_stop()
        stopped_at = trio.current_time()
    record = await h.record()
    assert record.status is RunStatus.SUCCEEDED and record.output == "done\n"
    assert h.drained(h.inboxes.scheduler) == []  # succeeded: no RunEnded to tell
    assert h.released == [run]
    # Marking stopped only once the run had ended (it took 0.3 s); the pending release
    # was given release_wait_s from then, then cancelled, and the stop ended with it.
    assert h.marks.stopped_at is not None and h.marks.stopped_at - stop_at >= 0.3
    [cancelled_at] = h.releases_cancelled_at
    assert 0.45 <= cancelled_at - h.marks.stopped_at < 0.5 + 0.3
    assert stopped_at - cancelled_at < 0.1


async def test_a_graceful_stop_does_not_wait_release_wait_s_once_the_releases_are_done():
    h = Harness(budget=ExecutorBudget(jobs_s=5.0, kill_s=1.0, release_wait_s=5.0))
    with trio.fail_after(WAIT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(h.executor.run)
            await h.send(StartRun(make_run("quick", "sleep 0.2")))
            assert await h.running() == 1
            stop_at = trio.current_time()
            h.executor.request_stop()
        assert trio.current_time() - stop_at < 2.0  # not the 5 s of release_wait_s
    assert (await h.record()).status is RunStatus.SUCCEEDED and len(h.released) == 1


async def test_a_cancelled_executor_cancels_its_pending_releases_at_once():
    h = Harness(budget=ExecutorBudget(jobs_s=5.0, kill_s=1.0, release_wait_s=5.0))
    h.release_hangs = True
    with trio.fail_after(WAIT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(h.executor.run)
            await h.send(StartRun(make_run("quick", "true")))
            await h.record()
            while not h.released:
                await trio.sleep(0.01)
            cancel_at = trio.current_time()
            nursery.cancel_scope.cancel()
    [cancelled_at] = h.releases_cancelled_at
    assert cancelled_at - cancel_at < 0.1
