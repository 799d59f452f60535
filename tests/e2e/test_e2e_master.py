"""The master and a worker as real processes: jobs saved through the API, schedctl and
the seed's endpoints are fired, and their runs come back through the same doors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import httpx
import pytest
import trio

from e2e_harness import serve_master

pytestmark = pytest.mark.slow

TOKEN = "e2e-token-" + uuid.uuid4().hex


@pytest.fixture
async def master_url(make_cluster, mysql_url):
    yield await serve_master(make_cluster(mysql_url), TOKEN, "mw1")


def api(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"})


async def poll(fetch, timeout_s: float = 15.0):
    """Call ``fetch`` until it returns something truthy."""
    with trio.fail_after(timeout_s):
        while not (found := await fetch()):
            await trio.sleep(0.3)
    return found


async def test_a_job_saved_through_the_api_runs_and_its_runs_are_listed(master_url):
    async with api(master_url) as client:
        answer = await client.put("/api/v1/jobs/api-job", json={
            "command": "echo from-api", "cronExpr": "* * * * * *", "concurrency": "allow"})
        assert answer.status_code == 201, answer.text

        async def runs():
            page = (await client.get("/api/v1/jobs/api-job/runs")).json()
            return page["runs"]

        [first, *_] = await poll(runs)
        assert first["status"] == "succeeded" and first["output"] == "from-api\n"
        assert first["worker"] == "mw1"
        one = await client.get(f"/api/v1/runs/{first['runId']}")
        assert one.json()["run"]["runId"] == first["runId"]


async def test_run_now_and_kill_through_the_api(master_url):
    async with api(master_url) as client:
        await client.put("/api/v1/jobs/sleepy", json={"command": "sleep 300", "cronExpr": "@yearly"})
        started = await client.post("/api/v1/jobs/sleepy/run")
        assert started.status_code == 202
        run_id = started.json()["runId"]

        async def running():
            return (await client.get("/api/v1/jobs/sleepy")).json()["job"]["running"]

        [run] = await poll(running)
        assert run["runId"] == run_id
        assert (await client.post("/api/v1/jobs/sleepy/kill", json={"runId": run_id})).status_code == 202

        async def record():
            answer = await client.get(f"/api/v1/runs/{run_id}")
            return answer.json()["run"] if answer.status_code == 200 else None

        finished = await poll(record)
        assert finished["status"] == "killed" and finished["trigger"] == "manual"


async def test_a_job_saved_with_schedctl_runs(master_url):
    env = {**os.environ, "SCHEDULER_URL": master_url, "SCHEDULER_API_TOKEN": TOKEN}
    schedctl = [sys.executable, "-m", "master.cli"]
    put = subprocess.run([*schedctl, "jobs", "put", "cli-job", "--command", "echo from-cli",
                          "--cron", "* * * * * *", "--concurrency", "allow"],
                         env=env, capture_output=True, text=True, timeout=30)
    assert put.returncode == 0, put.stderr

    async def runs():
        done = await trio.to_thread.run_sync(lambda: subprocess.run(
            [*schedctl, "--json", "runs", "--job", "cli-job"],
            env=env, capture_output=True, text=True, timeout=30))
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["runs"]

    [first, *_] = await poll(runs)
    assert first["output"] == "from-cli\n"
    listed = subprocess.run([*schedctl, "jobs", "list"], env=env, capture_output=True,
                            text=True, timeout=30)
    assert "cli-job" in listed.stdout


async def test_the_seed_endpoints_save_a_job_and_show_its_log(master_url):
    async with api(master_url) as client:
        job = {"name": "seed-job", "command": "echo from-seed", "cronExpr": "*/1 * * * * *"}
        saved = await client.post("/job/save", data={"job": json.dumps(job)})
        assert saved.json() == {"errno": 0, "msg": "success", "data": None}

        async def log():
            body = (await client.get("/job/log", params={"name": "seed-job"})).json()
            assert body["errno"] == 0
            return body["data"]

        [newest, *_] = await poll(log)
        assert newest["jobName"] == "seed-job" and newest["output"] == "from-seed\n"
        assert set(newest) >= {"jobName", "command", "err", "output", "planTime",
                               "scheduleTime", "startTime", "endTime"}
        listed = (await client.post("/job/list")).json()["data"]
        assert {"name": "seed-job", "command": "echo from-seed",
                "cronExpr": "*/1 * * * * *"} in listed
        workers = (await client.get("/worker/list")).json()["data"]
        assert workers == ["mw1"]
        bad = await client.post("/job/save", data={"job": "{not json"})
        assert bad.status_code == 400 and bad.json()["errno"] != 0
