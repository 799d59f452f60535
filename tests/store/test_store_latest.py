"""RunStore.latest_runs: each job's newest run for the jobs list, in one query, on
both backends."""

from __future__ import annotations

from store_testkit import T0, run


async def test_an_empty_history_has_no_last_runs(store):
    assert await store.latest_runs() == {}


async def test_each_jobs_newest_run_with_its_duration(store):
    await store.write_batch([run(i) for i in range(9)])  # job-<i % 3>, newest last
    latest = await store.latest_runs()
    assert sorted(latest) == ["job-0", "job-1", "job-2"]
    assert {job: r.run_id for job, r in latest.items()} == {
        "job-0": "run-00006", "job-1": "run-00007", "job-2": "run-00008"}
    last = latest["job-2"]
    assert (last.status, last.trigger, last.start_time, last.end_time, last.duration_ms) == (
        "succeeded", "schedule", T0 + 8005, T0 + 8900, 895)
    assert last.to_json() == {
        "runId": "run-00008", "status": "succeeded", "trigger": "schedule",
        "scheduleTime": T0 + 8003, "startTime": T0 + 8005, "endTime": T0 + 8900,
        "durationMs": 895}


async def test_a_skipped_fire_after_the_last_start_is_the_last_run(store):
    skipped = run(30, status="skipped", start_time=None, end_time=None, exit_code=None)
    await store.write_batch([run(0), run(3, status="failed", exit_code=2), skipped])
    last = (await store.latest_runs())["job-0"]
    assert (last.run_id, last.status, last.start_time, last.duration_ms) == (
        "run-00030", "skipped", None, None)


async def test_two_runs_started_in_the_same_ms_the_later_written_wins(store):
    same = dict(start_time=T0 + 5, end_time=T0 + 10)
    await store.write_batch([run(0, **same)])
    await store.write_batch([run(3, status="failed", exit_code=1, **same)])
    assert (await store.latest_runs())["job-0"].run_id == "run-00003"


async def test_one_query_whatever_the_number_of_jobs(store):
    await store.write_batch([run(i, job_name=f"job-{i % 500}") for i in range(1500)])
    calls = store.statistics().calls
    latest = await store.latest_runs()
    assert store.statistics().calls == calls + 1
    assert len(latest) == 500
    assert latest["job-499"].run_id == "run-01499"


async def test_of_named_jobs_only_the_same_runs_in_one_query(store):
    await store.write_batch([run(i, job_name=f"job-{i % 500}") for i in range(1500)])
    whole = await store.latest_runs()
    calls = store.statistics().calls
    named = await store.latest_runs(["job-7", "job-499", "no-such-job"])
    assert store.statistics().calls == calls + 1
    assert named == {"job-7": whole["job-7"], "job-499": whole["job-499"]}
    assert await store.latest_runs([]) == {}
