"""The Executor with real bash processes: records, kills, timeouts, fencing.

Runs claimed ahead of their planned time, or held until marked started, are in
test_executor_start; shutdown in test_executor_stop.
"""

from __future__ import annotations

import time

import trio

from cluster.store import RunRecord, RunStatus, RunTrigger
from test_process import SpawnedTasks, pid_alive, wait_group_gone
from worker.executor.early_kills import EarlyKill, EarlyKills
from worker.executor.messages import Fenced, KillRun, StartRun
from worker.registrar.messages import SessionChanged
from worker.scheduler.messages import RunEnded

from executor_testkit import LEASE, WAIT_S, executor, make_run, read_fifo


# -- outcomes ---------------------------------------------------------------------------


async def test_success_record_has_every_field_and_peers_hear_of_it():
    run = make_run("hello", "echo hello; echo warn >&2")
    async with executor() as h:
        await h.send(StartRun(run))
        record = await h.record()
        await h.runs_over()
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
    assert h.drained(h.inboxes.scheduler) == []  # succeeded: nothing to retry
    assert h.released == [run]
    assert h.load.running == 0  # the count the Locker reads: no message to it
    assert h.drained(h.inboxes.locker) == []


async def test_big_output_keeps_exactly_the_cap_and_failure_keeps_output():
    run = make_run("big", "yes abcdefg | head -c 1048576; echo oops >&2; exit 3")
    async with executor() as h:
        await h.send(StartRun(run))
        record = await h.record()
    assert record.output == ("abcdefg\n" * 8192)[:65536]
    assert len(record.output) == 65536 and record.output_truncated
    assert (record.exit_code, record.status, record.err) == (3, RunStatus.FAILED, "oops\n")


async def test_only_a_run_that_may_be_retried_is_told_to_the_scheduler():
    """RunEnded is for retries alone (issue 14: a message per succeeded fire cost a
    Scheduler step for nothing): a failure is told, after its record; a success is not."""
    failed, succeeded = make_run("flaky", "exit 3"), make_run("fine", "true")
    async with executor() as h:
        await h.send(StartRun(failed))
        await h.send(StartRun(succeeded))
        records = await h.records(2)
        await h.runs_over()
        told = h.drained(h.inboxes.scheduler)
    assert records[failed.fire.run_id].status is RunStatus.FAILED
    assert records[succeeded.fire.run_id].status is RunStatus.SUCCEEDED
    assert told == [RunEnded(failed, RunStatus.FAILED)]


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


async def test_a_running_runs_output_is_in_its_live_output_before_its_record():
    """The Executor's pipe readers feed the run's tap as they read (worker.live_output):
    the first line is there while the run still sleeps; eof comes with the end."""
    run = make_run("talker", "echo first; sleep 1; echo second >&2")
    taken = []
    async with executor() as h:
        await h.send(StartRun(run))
        with trio.fail_after(5):
            while not any(c.data == "first\n" for c in taken):
                taken += h.live.take()
                await trio.sleep(0.05)
        assert await h.running() == 1  # still going: nothing recorded yet
        assert h.load.running == 1
        assert h.drained(h.inboxes.log_sink) == []
        record = await h.record()
        taken += h.live.take()
    assert record.output == "first\n" and record.err == "second\n"
    assert [(c.stream, c.data) for c in taken] == [("out", "first\n"), ("err", "second\n"),
                                                   ("eof", "")]
    assert [c.seq for c in taken] == [1, 2, 3] and {c.run_id for c in taken} == {run.fire.run_id}


async def test_a_run_refused_or_unspawned_leaves_no_live_output():
    async with executor(bash_path="/nonexistent/bash") as h:
        await h.send(StartRun(make_run("nobash", "echo hi")))
        await h.record()
        assert h.live.take() == [] and h.live.statistics().pending_bytes == 0


async def test_a_run_costs_one_task_no_sigkill_timer_and_without_a_guard_no_release():
    """Issue 14 (CPU per fire): a run that is not killed and holds no ``active/`` guard
    spawns its own task, which reads its pipes too; its mark, once landed, commits it in
    the marks' serving task. Nothing else."""
    run = make_run("lean", "echo out; echo err >&2", guarded=False)
    spawned = SpawnedTasks()
    async with executor() as h:
        trio.lowlevel.add_instrument(spawned)
        try:
            await h.send(StartRun(run))
            record = await h.record()
            await h.runs_over()  # after the release would start
        finally:
            trio.lowlevel.remove_instrument(spawned)
    assert record.output == "out\n" and record.err == "err\n"
    assert h.drained(h.inboxes.scheduler) == [] and h.released == []
    fire = run.fire
    assert spawned.names == [f"run lean/{fire.run_id}"]


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


async def test_a_replaced_run_is_killed_as_a_group_and_recorded_replaced(fifo):
    run = make_run("swap", f"echo $$ > {fifo}; sleep 300; echo done")
    async with executor() as h:
        await h.send(StartRun(run))
        pgid = int(await read_fifo(fifo))
        await h.send(KillRun("swap", run.fire.run_id, RunStatus.REPLACED,
                             "replaced by run r9 (concurrency replace)"))
        await wait_group_gone(pgid, within_s=1.0)
        record = await h.record()
        await h.runs_over()
    assert record.status is RunStatus.REPLACED and record.exit_code == -15
    assert record.err.endswith(
        "[scheduler] run replaced: replaced by run r9 (concurrency replace)\n")
    assert h.drained(h.inboxes.scheduler) == []  # not retryable: nothing told


# -- timeouts, kills by name, fencing ---------------------------------------------------


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


async def test_a_fenced_run_that_ignores_sigterm_is_sigkilled_within_the_fence_bound(fifo):
    """The lease may be gone ``kill_within_s`` after the fence: the run must be dead by
    then, whatever ``kill_grace_s`` (5 s here) says."""
    run = make_run("stubborn", f"trap '' TERM; echo up > {fifo}; sleep 300")
    async with executor(kill_grace_s=5.0) as h:
        await h.send(StartRun(run))
        assert await h.running() == 1
        assert await read_fifo(fifo) == "up\n"  # bash has set its trap
        fenced_at = trio.current_time()
        await h.send(Fenced(LEASE, 0.3))
        record = await h.record()
        took_s = trio.current_time() - fenced_at
    assert record.status is RunStatus.LOST and "fenced" in record.err
    assert 0.25 <= took_s < 1.0, took_s


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


async def test_a_full_log_sink_makes_the_run_wait_and_no_record_is_dropped():
    runs = [make_run(f"full{i}", f"echo {i}", guarded=False) for i in range(3)]
    async with executor(log_chan_len=1) as h:
        for run in runs:
            await h.send(StartRun(run))
        await trio.sleep(1)  # every run has ended: one record queued, two runs waiting
        stats = h.inboxes.log_sink.statistics()
        assert (stats.depth, stats.senders_waiting, await h.running()) == (1, 2, 2)
        records = await h.records(3)
        await h.runs_over()  # each run went on past its record, none stuck
        assert await h.running() == 0
    assert {r.output for r in records.values()} == {"0\n", "1\n", "2\n"}
