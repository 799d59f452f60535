"""The Executor with real bash processes: records, kills, timeouts, fencing, shutdown."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from actors import call
from cluster.config import Config
from cluster.keyspace import Keyspace
from cluster.spec import JobSpec
from cluster.store import RunRecord, RunStatus, RunTrigger
from test_process import pid_alive, wait_group_gone
from worker.clock import SystemClock
from worker.context import WorkerContext
from worker.mailboxes import open_mailboxes
from worker.executor.actor import Executor
from worker.executor.early_kills import EarlyKill, EarlyKills
from worker.executor.messages import Fenced, KillRun, RunningCount, StartRun
from worker.executor.run_as import JobUsers
from worker.locker.messages import LoadChanged
from worker.log_sink.messages import Write
from worker.messages import Fire, Run
from worker.registrar.messages import SessionChanged
from worker.scheduler.messages import RunEnded
from worker.shutdown_budget import ExecutorBudget

LEASE = 0x1234
WAIT_S = 10  # generous bound for anything that should take well under a second


def make_run(name: str, command: str, *, lease: int = LEASE, **spec) -> Run:
    job = JobSpec.from_json({"name": name, "command": command, "cronExpr": "* * * * *", **spec})
    now_ms = time.time_ns() // 1_000_000
    fire = Fire(job, planned_ms=now_ms - 1500, fired_ms=now_ms - 1000,
                trigger=RunTrigger.CATCHUP, run_id=uuid.uuid4().hex, attempt=2)
    return Run(fire, session_lease=lease, guarded=False)


class FakeMarks:
    """Marks every run started (or, with ``gone``, finds every key gone), after ``delay_s``;
    ``asked``: every run it was asked to mark."""

    def __init__(self) -> None:
        self.asked: list[Run] = []
        self.gone = False
        self.delay_s = 0.0
        self.stopped_at: float | None = None  # trio time its serve() was cancelled

    async def serve(self) -> None:
        try:
            await trio.sleep_forever()
        finally:
            self.stopped_at = trio.current_time()

    async def mark(self, run: Run) -> bool:
        self.asked.append(run)
        await trio.sleep(self.delay_s)
        return not self.gone


class Harness:
    """An Executor on real mailboxes; tests read what it sent to its peers."""

    def __init__(self, users: JobUsers | None = None, *,
                 budget: ExecutorBudget | None = None, **config) -> None:
        cfg = dataclasses.replace(Config(), kill_grace_s=1.0, **config)
        self.peers, self.inboxes = open_mailboxes(cfg)
        self.ctx = WorkerContext(cfg, "worker-7", Keyspace("/cron/"), SystemClock())
        self.released: list[Run] = []
        self.release_error: Exception | None = None
        self.release_hangs = False  # a release then waits until it is cancelled
        self.releases_cancelled_at: list[float] = []  # trio times
        self.marks = FakeMarks()
        self.executor = Executor(self.inboxes.executor, self.ctx,
                                 scheduler=self.peers.scheduler, log_sink=self.peers.log_sink,
                                 locker=self.peers.locker, release=self._release,
                                 marks=self.marks, users=users, budget=budget)

    async def _release(self, run: Run) -> None:
        self.released.append(run)
        if self.release_error is not None:
            raise self.release_error
        if self.release_hangs:
            try:
                await trio.sleep_forever()
            finally:
                self.releases_cancelled_at.append(trio.current_time())

    async def send(self, msg) -> None:
        await self.peers.executor.send(msg)

    async def record(self) -> RunRecord:
        with trio.fail_after(WAIT_S):
            msg = await self.inboxes.log_sink.receive()
        assert isinstance(msg, Write)
        return msg.record

    async def records(self, n: int) -> dict[str, RunRecord]:
        return {r.run_id: r for r in [await self.record() for _ in range(n)]}

    async def running(self) -> int:
        with trio.fail_after(WAIT_S):
            return await call(self.peers.executor, RunningCount)

    def drained(self, inbox) -> list:
        out = []
        while True:
            try:
                out.append(inbox.receive_nowait())
            except trio.WouldBlock:
                return out


@asynccontextmanager
async def executor(users: JobUsers | None = None, **config) -> AsyncIterator[Harness]:
    h = Harness(users, **config)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.executor.run)
        yield h
        nursery.cancel_scope.cancel()


async def read_fifo(path: Path) -> str:
    """What a job writes into the FIFO at ``path`` (blocks until it has written)."""
    with trio.fail_after(WAIT_S):
        return await trio.to_thread.run_sync(path.read_text, abandon_on_cancel=True)


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pid.fifo"
    os.mkfifo(path)
    return path


# -- outcomes ---------------------------------------------------------------------------


async def test_success_record_has_every_field_and_peers_hear_of_it():
    run = make_run("hello", "echo hello; echo warn >&2")
    async with executor() as h:
        await h.send(StartRun(run))
        record = await h.record()
        with trio.fail_after(WAIT_S):
            ended = await h.inboxes.scheduler.receive()
        assert await h.running() == 0
    fire = run.fire
    assert record == RunRecord(
        run_id=fire.run_id, job_name="hello", worker="worker-7", command=fire.spec.command,
        output="hello\n", err="warn\n", exit_code=0, status=RunStatus.SUCCEEDED,
        trigger=RunTrigger.CATCHUP, attempt=2, plan_time=fire.planned_ms,
        schedule_time=fire.fired_ms, start_time=record.start_time, end_time=record.end_time,
        output_truncated=False,
    )
    assert fire.fired_ms < record.start_time <= record.end_time
    assert ended == RunEnded(run, RunStatus.SUCCEEDED)
    assert h.released == [run]
    assert h.drained(h.inboxes.locker) == [LoadChanged(1), LoadChanged(0)]


async def test_big_output_keeps_exactly_the_cap_and_failure_keeps_output():
    run = make_run("big", "yes abcdefg | head -c 1048576; echo oops >&2; exit 3")
    async with executor() as h:
        await h.send(StartRun(run))
        record = await h.record()
    assert record.output == ("abcdefg\n" * 8192)[:65536]
    assert len(record.output) == 65536 and record.output_truncated
    assert (record.exit_code, record.status, record.err) == (3, RunStatus.FAILED, "oops\n")


async def test_job_environment_has_its_env_and_run_identity_but_not_worker_settings(monkeypatch):
    monkeypatch.setenv("SCHEDULER_DB_URL", "mysql://u:secret@h/db")
    monkeypatch.setenv("INHERITED", "yes")
    run = make_run("env", 'echo "$SCHEDULER_JOB_NAME $SCHEDULER_RUN_ID $SCHEDULER_PLAN_TIME_MS'
                          ' $FOO $INHERITED ${SCHEDULER_DB_URL-unset}"', env={"FOO": "bar"})
    async with executor() as h:
        await h.send(StartRun(run))
        record = await h.record()
    fire = run.fire
    assert record.output == f"env {fire.run_id} {fire.planned_ms} bar yes unset\n"


async def test_output_is_decoded_leniently():
    async with executor() as h:
        await h.send(StartRun(make_run("bytes", r"printf 'a\0b\377c'")))
        record = await h.record()
    assert record.output == "ab\ufffdc" and record.status is RunStatus.SUCCEEDED


async def test_spawn_failure_is_a_failed_record_and_the_executor_carries_on():
    run = make_run("nobash", "true")
    async with executor(bash_path="/nonexistent/bash") as h:
        await h.send(StartRun(run))
        record = await h.record()
        assert await h.running() == 0
        stats = h.executor.statistics_detail()
    assert record.status is RunStatus.FAILED and record.exit_code is None
    assert "cannot start '/nonexistent/bash'" in record.err
    assert stats.spawn_failures == 1 and stats.finished == 1
    assert h.released == [run]


# -- kills --------------------------------------------------------------------------------


async def test_kill_run_kills_bash_and_its_children_within_a_second(fifo):
    run = make_run("sleeper", f"echo $$ > {fifo}; sleep 300; echo done")
    async with executor() as h:
        await h.send(StartRun(run))
        pgid = int(await read_fifo(fifo))
        assert await h.running() == 1
        killed_at = time.monotonic()
        await h.send(KillRun("sleeper", run.fire.run_id))
        await wait_group_gone(pgid, within_s=1.0)
        record = await h.record()
    assert time.monotonic() - killed_at < 1.0
    assert record.status is RunStatus.KILLED and record.output == ""
    assert record.err.endswith("[scheduler] run killed: kill requested\n")
    assert record.exit_code == -15


def planned_in(run: Run, delay_s: float) -> Run:
    """The same run, claimed ahead of a planned time ``delay_s`` from now."""
    now_ms = time.time_ns() // 1_000_000
    fire = dataclasses.replace(run.fire, planned_ms=now_ms + round(delay_s * 1000),
                               fired_ms=now_ms, trigger=RunTrigger.SCHEDULE, attempt=1)
    return dataclasses.replace(run, fire=fire)


async def test_a_run_claimed_ahead_starts_at_its_planned_time_not_before():
    run = planned_in(make_run("ahead", 'echo "$EPOCHREALTIME"'), 0.3)
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


async def test_a_run_spawned_ahead_counts_its_timeout_from_its_planned_time():
    run = planned_in(make_run("ahead", "sleep 0.7", timeout=1), 0.6)
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
    run = make_run("slow-mark", "sleep 0.8", timeout=1)
    async with executor() as h:
        h.marks.delay_s = 0.6  # counted from the spawn, 0.6 + 0.8 s would pass the timeout
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


async def test_timeout_kills_the_group_with_status_timeout(fifo):
    run = make_run("slow", f"echo $$ > {fifo}; sleep 300; echo done", timeout=2)
    async with executor() as h:
        start = time.monotonic()
        await h.send(StartRun(run))
        pgid = int(await read_fifo(fifo))
        record = await h.record()
        elapsed = time.monotonic() - start
        await wait_group_gone(pgid, within_s=1.0)
    assert 1.9 < elapsed < 4
    assert record.status is RunStatus.TIMEOUT
    assert "[scheduler] run timeout: timed out after 2 s" in record.err
    assert h.executor.statistics_detail().timed_out == 1


async def test_kill_by_job_name_kills_all_its_runs_and_only_those():
    runs = [make_run("multi", "sleep 300") for _ in range(3)]
    other = make_run("other", "sleep 300")
    async with executor() as h:
        for run in [*runs, other]:
            await h.send(StartRun(run))
        assert await h.running() == 4
        await h.send(KillRun("multi", None, RunStatus.KILLED, "job deleted"))
        records = await h.records(3)
        assert await h.running() == 1
        await h.send(KillRun("other", other.fire.run_id))
        last = await h.record()
    assert set(records) == {r.fire.run_id for r in runs}
    assert all(r.status is RunStatus.KILLED and "job deleted" in r.err for r in records.values())
    assert last.run_id == other.fire.run_id and last.status is RunStatus.KILLED


async def test_kill_of_an_unknown_run_changes_nothing():
    run = make_run("keep", "sleep 0.3; echo ok")
    async with executor() as h:
        await h.send(StartRun(run))
        await h.send(KillRun("keep", "some-other-run"))
        await h.send(KillRun("nobody", None))
        record = await h.record()
    assert record.status is RunStatus.SUCCEEDED and record.output == "ok\n"


async def test_fenced_kills_every_run_as_lost():
    runs = [make_run("a", "sleep 300"), make_run("b", "sleep 300")]
    async with executor() as h:
        for run in runs:
            await h.send(StartRun(run))
        assert await h.running() == 2
        await h.send(Fenced(LEASE))
        records = await h.records(2)
        ended = [await h.inboxes.scheduler.receive() for _ in range(2)]
    assert {r.status for r in records.values()} == {RunStatus.LOST}
    assert all("session lease 4660 was lost" in r.err and "fenced" in r.err
               for r in records.values())
    assert {e.status for e in ended} == {RunStatus.LOST}


async def test_a_late_fenced_spares_runs_of_the_new_live_session():
    old = make_run("old", "sleep 300", lease=1)
    new = make_run("new", "sleep 300", lease=2)
    async with executor() as h:
        await h.send(SessionChanged(2))
        await h.send(StartRun(old))
        await h.send(StartRun(new))
        await h.send(Fenced(1))
        record = await h.record()
        assert record.run_id == old.fire.run_id and record.status is RunStatus.LOST
        assert await h.running() == 1


async def test_background_grandchild_is_gone_after_bash_exits():
    async with executor() as h:
        await h.send(StartRun(make_run("bg", "sleep 100 & echo $$ $!")))
        record = await h.record()
    pgid, grandchild = map(int, record.output.split())
    assert record.status is RunStatus.SUCCEEDED
    await wait_group_gone(pgid, within_s=1.0)
    assert not pid_alive(grandchild)


async def test_a_failing_release_does_not_disturb_other_runs():
    async with executor() as h:
        h.release_error = RuntimeError("etcd gone")
        await h.send(StartRun(make_run("r1", "true")))
        await h.record()
        await h.send(StartRun(make_run("r2", "echo still here")))
        record = await h.record()
    assert record.output == "still here\n" and len(h.released) == 2


async def test_a_kill_that_comes_before_its_run_stops_the_run_before_it_starts(tmp_path):
    # Regression (CI): the run's key is visible once claimed, so a kill naming it can
    # reach the Executor before the run's StartRun does; it was dropped.
    marker = tmp_path / "started"
    run = make_run("early", f"touch {marker}; sleep 30")
    async with executor() as h:
        await h.send(KillRun("early", run.fire.run_id, RunStatus.KILLED, "kill requested"))
        await h.send(StartRun(run))
        record = await h.record()
        assert await h.running() == 0
    assert record.status is RunStatus.KILLED and record.start_time is None
    assert "kill requested" in record.err
    assert not marker.exists()


def test_early_kills_are_bounded_in_number_and_in_time():
    kills = EarlyKills(max_kills=2, keep_s=10.0)
    kill = EarlyKill(RunStatus.KILLED, "kill requested")
    for n, run_id in enumerate(["a", "b", "c"]):
        kills.remember(run_id, kill, now_s=float(n))
    assert len(kills) == 2 and kills.take("a", now_s=3.0) is None  # the oldest went
    assert kills.take("b", now_s=11.5) is None  # too old (came at 1.0)
    assert kills.take("c", now_s=11.5) == kill
    assert kills.take("c", now_s=11.5) is None  # taken once
