"""schedctl's renderings of what issue 12 adds: a job no live worker can run, and a
skipped record that stands for several fires."""

from __future__ import annotations

from master.cli._views import describe_job, describe_run, jobs_table, run_status, runs_table

T0 = 1_700_000_000_000
JOB = {"name": "zoned", "cronExpr": "* * * * * *", "timezone": "UTC", "command": "true",
       "paused": False, "running": [], "nextFire": T0 + 1000, "schedulable": False,
       "reason": "no live worker has zone=b", "selector": {"zone": "b"}}
SKIPPED = {"runId": "r1.skipped", "jobName": "long", "status": "skipped", "trigger": "schedule",
           "attempt": 1, "worker": "w1", "startTime": None, "endTime": None, "exitCode": None,
           "planTime": T0 + 2000, "scheduleTime": T0 + 2000, "command": "sleep 10",
           "output": "", "err": "skipped: still running", "skipCount": 9,
           "firstSkipTime": T0 + 2000, "lastSkipTime": T0 + 10_000}


def test_a_job_no_live_worker_can_run_says_so():
    assert "unschedulable: no live worker has zone=b" in jobs_table([JOB], T0)
    assert "state              unschedulable: no live worker has zone=b" in describe_job(JOB, T0)
    assert "unschedulable" not in jobs_table([{**JOB, "schedulable": True, "reason": None}], T0)
    assert "never:" in jobs_table([{**JOB, "nextFire": None, "reason": "no time"}], T0)


def test_a_skipped_record_shows_how_many_fires_it_stands_for():
    assert run_status(SKIPPED) == "skipped×9"
    assert run_status({**SKIPPED, "skipCount": 1}) == "skipped"
    assert "skipped×9" in runs_table({"runs": [SKIPPED]})
    described = describe_run(SKIPPED)
    assert "skipped fires" in described and described.count("9") >= 1
