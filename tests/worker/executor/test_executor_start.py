"""The Executor with real bash processes and runs that must not start at once: claimed
ahead of their planned time, or held until their run is marked started (or found gone).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import time

import pytest
import trio

from cluster.store import RunStatus, RunTrigger
from worker.executor.messages import KillRun, StartRun
from worker.messages import Run

from executor_testkit import WAIT_S, Harness, executor, make_run, read_fifo
from test_process import SpawnedTasks


# -- planned time and start marks --------------------------------------------------------


def planned_in(run: Run, delay_s: float) -> Run:
    """The same run, claimed ahead of a planned time ``delay_s`` from now."""
    now_ms = time.time_ns() // 1_000_000
    fire = dataclasses.replace(run.fire, planned_ms=now_ms + round(delay_s * 1000),
                               fired_ms=now_ms, trigger=RunTrigger.SCHEDULE, attempt=1)
    return dataclasses.replace(run, fire=fire)


@pytest.mark.parametrize("ahead_s", [0.3, 1.2])  # a lead; a lead and a thin window's reach
async def test_a_run_claimed_ahead_starts_at_its_planned_time_not_before(ahead_s):
    run = planned_in(make_run("ahead", 'echo "$EPOCHREALTIME"'), ahead_s)
    async with executor() as h:
        await h.send(StartRun(run))
        assert await h.running() == 1  # accepted, waiting for its instant
        record = await h.record()
    assert record.status is RunStatus.SUCCEEDED
    assert record.start_time >= run.fire.planned_ms
    child_ms = float(record.output) * 1000
    assert run.fire.planned_ms <= child_ms < run.fire.planned_ms + WAIT_S * 1000


async def test_a_kill_while_a_run_waits_for_its_time_stops_it_before_it_starts(tmp_path):
    marker = tmp_path / "started"
    run = planned_in(make_run("ahead", f"touch {marker}"), 2.0)
    async with executor() as h:
        await h.send(StartRun(run))
        assert await h.running() == 1
        await h.send(KillRun("ahead", None, RunStatus.KILLED, "job deleted"))
        record = await h.record()
        assert await h.running() == 0
    assert time.time_ns() // 1_000_000 < run.fire.planned_ms  # not held to its time
    assert record.status is RunStatus.KILLED and record.start_time is None
    assert "before it started: job deleted" in record.err
    assert not marker.exists()


# Counted from the spawn, ahead + 1 s would pass the 2 s timeout; from the planned time
# it leaves 1 s of slack for a loaded machine.
@pytest.mark.parametrize("ahead_s", [1.5, 2.5])
async def test_a_run_spawned_ahead_counts_its_timeout_from_its_planned_time(ahead_s):
    run = planned_in(make_run("ahead", "sleep 1", timeout=2), ahead_s)
    async with executor() as h:
        await h.send(StartRun(run))
        record = await h.record()
    assert record.status is RunStatus.SUCCEEDED, record.err


async def test_a_run_spawned_ahead_keeps_its_kill_grace(fifo):
    """The job's own program gets the SIGTERM and its grace, as under ``bash -c``."""
    program = ("import signal, sys, time\n"
               "signal.signal(signal.SIGTERM, lambda *a: (print('cleaned up', flush=True),"
               " time.sleep(0.3), sys.exit(3)))\n"
               f"open({str(fifo)!r}, 'w').write('up')\n"
               "time.sleep(30)\n")
    run = planned_in(make_run("graceful", f"{sys.executable} -c \"{program}\""), 0.3)
    async with executor() as h:
        await h.send(StartRun(run))
        assert await read_fifo(fifo) == "up"
        await h.send(KillRun("graceful", run.fire.run_id))
        record = await h.record()
    assert record.status is RunStatus.KILLED
    assert (record.exit_code, record.output) == (3, "cleaned up\n")


async def test_a_run_spawned_ahead_sources_its_bash_env_once_after_the_wait(tmp_path):
    sourced = tmp_path / "sourced"
    bash_env = tmp_path / "env.sh"
    bash_env.write_text(f'echo "$EPOCHREALTIME" >> {sourced}\n')
    run = planned_in(make_run("env", "true", env={"BASH_ENV": str(bash_env)}), 0.3)
    async with executor() as h:
        await h.send(StartRun(run))
        record = await h.record()
    assert record.status is RunStatus.SUCCEEDED
    [line] = sourced.read_text().splitlines()
    assert float(line) * 1000 >= run.fire.planned_ms


async def test_with_another_shell_the_executor_waits_for_the_planned_time_itself():
    run = planned_in(make_run("ahead", "date +%s.%N"), 0.3)
    async with executor(bash_path="/bin/sh") as h:
        await h.send(StartRun(run))
        record = await h.record()
    assert record.status is RunStatus.SUCCEEDED
    assert float(record.output) * 1000 >= run.fire.planned_ms
    assert h.marks.asked == [run]  # marked before its spawn: no orphan settles it


async def test_a_command_starts_only_once_its_run_is_marked_started():
    run = make_run("marked", 'echo "$EPOCHREALTIME"')  # due 1.5 s ago: no wait of its own
    async with executor() as h:
        h.marks.delay_s = 0.5
        before_ms = time.time_ns() // 1_000_000
        await h.send(StartRun(run))
        record = await h.record()
    assert h.marks.asked == [run]
    assert record.status is RunStatus.SUCCEEDED
    assert float(record.output) * 1000 >= before_ms + 500
    assert record.start_time >= before_ms + 500


async def test_a_held_run_counts_its_timeout_from_when_it_was_told_to_start():
    run = make_run("slow-mark", "sleep 1", timeout=2)
    async with executor() as h:
        # Counted from the spawn, 1.5 + 1 s would pass the timeout; from the start,
        # 1 s of slack.
        h.marks.delay_s = 1.5
        await h.send(StartRun(run))
        record = await h.record()
    assert record.status is RunStatus.SUCCEEDED, record.err


@pytest.mark.parametrize("shell", ["/bin/bash", "/bin/sh"])
async def test_a_run_stopped_before_it_was_marked_is_never_marked(shell):
    run = make_run("late", "true")
    h = Harness(bash_path=shell)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.executor.run)
        h.peers.executor.send_nowait(StartRun(run))  # no checkpoint before the stop
        h.executor.request_stop()
    assert (await h.record()).status is RunStatus.LOST
    assert h.marks.asked == []


async def test_a_run_whose_claim_vanished_before_its_mark_never_starts(tmp_path):
    marker = tmp_path / "ran"
    run = make_run("fenced", f"touch {marker}")
    async with executor() as h:
        h.marks.gone = True  # the session lease expired: another worker may run it now
        await h.send(StartRun(run))
        record = await h.record()
    assert (record.status, record.start_time) == (RunStatus.LOST, None)
    assert "vanished" in record.err and "before it started" in record.err
    assert not marker.exists()


class ReadyRuns:
    """A ClaimLead that only notes the runs it is told are ready (their mark landed)."""

    def __init__(self) -> None:
        self.ready_runs: list[str] = []

    def ready(self, fire) -> None:
        self.ready_runs.append(fire.run_id)


async def test_a_held_process_that_ends_before_its_mark_lands_is_never_committed():
    # Scheduled, so that a commit would count its lateness (the tally's ``started``).
    run = planned_in(make_run("dies", "true"), 0)
    lead = ReadyRuns()
    h = Harness(lead=lead)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.executor.run)
        h.marks.delay_s = 0.5
        await h.send(StartRun(run))
        await trio.sleep(0.1)  # held, its mark in flight
        [active] = h.executor._active.values()
        os.killpg(active.process.pid, signal.SIGKILL)  # something else kills it
        record = await h.record()
        assert (record.status, record.start_time) == (RunStatus.FAILED, None)
        assert "ended (code -9) before it was started" in record.err
        await trio.sleep(0.6)  # the mark has landed by now: nothing may follow it
        stats = h.executor.statistics_detail()
        nursery.cancel_scope.cancel()
    assert h.marks.asked == [run] and lead.ready_runs == []
    assert stats.runs.lateness.count == 0 and stats.running == 0


async def test_a_held_run_whose_mark_lands_is_ready_and_committed_once():
    run = planned_in(make_run("lands", "true"), 0)
    lead = ReadyRuns()
    h = Harness(lead=lead)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.executor.run)
        await h.send(StartRun(run))
        record = await h.record()
        stats = h.executor.statistics_detail()
        nursery.cancel_scope.cancel()
    assert record.status is RunStatus.SUCCEEDED and record.start_time is not None
    assert lead.ready_runs == [run.fire.run_id] and stats.runs.lateness.count == 1


async def test_a_mark_left_undecided_is_retried_by_a_task_then_commits_the_run():
    run = make_run("retried", "echo ran")
    spawned = SpawnedTasks()
    async with executor() as h:
        h.marks.unreachable = 2  # the first attempt (the queued one) and its first retry
        trio.lowlevel.add_instrument(spawned)
        try:
            await h.send(StartRun(run))
            record = await h.record()
        finally:
            trio.lowlevel.remove_instrument(spawned)
    assert (record.status, record.output) == (RunStatus.SUCCEEDED, "ran\n")
    assert h.marks.asked == [run] and h.marks.unreachable == 0
    commits = [name for name in spawned.names if name.startswith("commit")]
    assert commits == [f"commit {run.fire.run_id}"]  # one task, for all the retries


async def test_a_graceful_stop_waits_for_a_run_whose_mark_is_being_retried():
    run = make_run("stop-retry", "echo ran")
    h = Harness()
    h.marks.unreachable = 3
    async with trio.open_nursery() as nursery:
        await nursery.start(h.executor.run)
        await h.send(StartRun(run))
        assert await h.running() == 1
        h.executor.request_stop()  # it waits for the mark: it is ours, it starts then
    record = await h.record()
    assert (record.status, record.output) == (RunStatus.SUCCEEDED, "ran\n")
    assert h.marks.stopped_at is not None


async def test_a_kill_while_a_run_waits_for_its_mark_stops_it_before_it_starts(tmp_path):
    marker = tmp_path / "ran"
    run = make_run("unmarked", f"touch {marker}")
    async with executor() as h:
        h.marks.delay_s = 30
        await h.send(StartRun(run))
        await trio.sleep(0.2)
        await h.send(KillRun("unmarked", None))
        record = await h.record()
    assert (record.status, record.start_time) == (RunStatus.KILLED, None)
    assert "before it started" in record.err
    assert not marker.exists() and h.marks.asked == [run]
