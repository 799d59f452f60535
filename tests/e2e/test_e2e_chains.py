"""Job chains with real etcd, MariaDB and two worker processes: B runs exactly once per
matching finished run of A (counted from the records and from a ledger the jobs write),
even when the worker that ran A is SIGKILLed right after it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.store import RunRecord, RunStatus, RunTrigger, open_store
from e2e_harness import all_records, put_job, serve_master, start_workers, wait_registered

pytestmark = pytest.mark.slow

NOTE = re.compile(r"\[scheduler\] chained after run ([0-9a-f]+) of job 'A' \((\w+)\)")
# Each job appends "<job> <its run id> <upstream run id or ->" to the ledger.
LEDGER_LINE = 'echo "$SCHEDULER_JOB_NAME $SCHEDULER_RUN_ID ${{SCHEDULER_UPSTREAM_RUN_ID:--}}" >> {ledger}'


def ledger(path: Path) -> list[tuple[str, str, str]]:
    if not path.exists():
        return []
    return [tuple(line.split()) for line in path.read_text().splitlines()]  # type: ignore[misc]


def upstream_of(record: RunRecord) -> str:
    match = NOTE.search(record.err)
    assert match is not None, record
    return match.group(1)


async def records_of(db_url: str) -> list[RunRecord]:
    async with open_store(db_url) as store:
        return await all_records(store)


async def test_chained_jobs_run_once_per_matching_upstream_run(make_cluster, mysql_url, tmp_path):
    book = tmp_path / "ledger"
    cluster = make_cluster(mysql_url)
    ks = Keyspace(cluster.prefix)
    async with open_etcd([cluster.etcd_endpoint]) as etcd:
        await start_workers(cluster, etcd, ks, ["w1", "w2"])
        line = LEDGER_LINE.format(ledger=book)
        # B-ok and B-fail have no schedule of their own; B-any also fires hourly.
        await put_job(etcd, ks, "B-ok", line, "", after={"job": "A", "on": "succeeded"})
        await put_job(etcd, ks, "B-fail", line, "", after={"job": "A", "on": "failed"})
        await put_job(etcd, ks, "B-any", line, "0 0 * * * *", after={"job": "A", "on": "completed"})
        await trio.sleep(0.5)  # the workers have the chains before A's first run
        # A every 2 s: it succeeds on even fires (of 2 s), fails on odd ones.
        a_command = f'{line}; [ $(( SCHEDULER_PLAN_TIME_MS / 2000 % 2 )) -eq 0 ]'
        await put_job(etcd, ks, "A", a_command, "*/2 * * * * *")
        await trio.sleep(13)
        await put_job(etcd, ks, "A", a_command, "*/2 * * * * *", paused=True)
        await trio.sleep(4)  # the last A run ends, its chained runs run
        for worker in cluster.workers:
            assert worker.alive(), cluster.logs()
        cluster.stop_all()
    records = await records_of(mysql_url)
    a_runs = {r.run_id: r.status for r in records if r.job_name == "A"}
    succeeded = {run for run, status in a_runs.items() if status is RunStatus.SUCCEEDED}
    failed = {run for run, status in a_runs.items() if status is RunStatus.FAILED}
    assert len(succeeded) >= 2 and len(failed) >= 2, a_runs
    assert set(a_runs) == succeeded | failed  # nothing else happened to A

    expected = {"B-ok": succeeded, "B-fail": failed, "B-any": succeeded | failed}
    for name, upstream_runs in expected.items():
        chained = [r for r in records if r.job_name == name]
        assert {r.trigger for r in chained} == {RunTrigger.CHAIN}, name
        assert {r.status for r in chained} == {RunStatus.SUCCEEDED}, name
        per_upstream = Counter(upstream_of(r) for r in chained)
        assert set(per_upstream) == upstream_runs, name  # none missing, none for the rest
        assert set(per_upstream.values()) == {1}, (name, per_upstream)  # none doubled
        lines = Counter(up for job, _, up in ledger(book) if job == name)
        assert lines == per_upstream, name  # the job itself ran once per upstream run
    # The note says how the upstream ended.
    for r in records:
        if r.job_name == "B-any":
            assert NOTE.search(r.err).group(2) == str(a_runs[upstream_of(r)])


@pytest.mark.parametrize("on", ["succeeded", "completed"])
async def test_a_chained_run_survives_the_upstream_worker_dying_right_after(
        make_cluster, mysql_url, tmp_path, on):
    """``succeeded``: A's worker is SIGKILLed as soon as A's record is in the store;
    ``completed``: as soon as A wrote its ledger line (its run ending). Either way B
    runs exactly once for that A run, on the surviving worker."""
    book = tmp_path / "ledger"
    cluster = make_cluster(mysql_url, "--session-ttl-s", "3")
    ks = Keyspace(cluster.prefix)
    async with open_etcd([cluster.etcd_endpoint]) as etcd:
        doomed = cluster.add_worker("doomed", "--labels", "role=upstream")
        cluster.add_worker("survivor", "--labels", "role=downstream")
        await wait_registered(etcd, ks, {"doomed", "survivor"})
        line = LEDGER_LINE.format(ledger=book)
        # A runs only on the doomed worker, B only on the survivor.
        await put_job(etcd, ks, "B", line, "", after={"job": "A", "on": on},
                      selector={"role": "downstream"})
        await trio.sleep(0.5)
        await put_job(etcd, ks, "A", line, "*/2 * * * * *", selector={"role": "upstream"})
        with trio.fail_after(15):
            while True:
                if on == "succeeded":
                    done = [r for r in await records_of(mysql_url) if r.job_name == "A"]
                else:
                    done = [entry for entry in ledger(book) if entry[0] == "A"]
                if done:
                    break
                await trio.sleep(0.02)
        doomed.kill()
        a_run = done[0].run_id if on == "succeeded" else done[0][1]
        await etcd.put(ks.job("A"), json.dumps({"name": "A", "command": line, "cronExpr":
                                                 "*/2 * * * * *", "paused": True}))
        # The survivor sees the lease expire (3 s) and records what it must; B runs.
        with trio.fail_after(20):
            while not [r for r in await records_of(mysql_url) if r.job_name == "B"]:
                await trio.sleep(0.2)
        await trio.sleep(5)  # time for a second B run, if there were to be one
        assert cluster.workers[1].alive(), cluster.logs()
        cluster.stop_all()
    records = await records_of(mysql_url)
    a_runs = {r.run_id: r for r in records if r.job_name == "A"}
    b_runs = [r for r in records if r.job_name == "B"]
    assert a_run in a_runs
    assert Counter(upstream_of(r) for r in b_runs)[a_run] == 1, (b_runs, cluster.logs())
    assert [up for job, _, up in ledger(book) if job == "B"].count(a_run) == 1
    [b] = [r for r in b_runs if upstream_of(r) == a_run]
    assert b.worker == "survivor" and b.trigger is RunTrigger.CHAIN
    if on == "succeeded":  # its record was durable: the end (and B's trigger) was written first
        assert a_runs[a_run].status is RunStatus.SUCCEEDED
    # Any other A run (the doomed worker may have started one more) chained at most once.
    assert set(Counter(upstream_of(r) for r in b_runs).values()) == {1}


async def test_through_the_master_a_cycle_is_422_and_one_line_in_schedctl_and_a_run_now_chains(
        make_cluster, mysql_url):
    token = "e2e-token-" + uuid.uuid4().hex
    url = await serve_master(make_cluster(mysql_url), token, "w1")
    async with httpx.AsyncClient(base_url=url,
                                 headers={"Authorization": f"Bearer {token}"}) as api:
        assert (await api.put("/api/v1/jobs/A", json={"command": "true",
                                                      "cronExpr": "@yearly"})).status_code == 201
        assert (await api.put("/api/v1/jobs/B", json={
            "command": "echo chained", "after": {"job": "A"}})).status_code == 201
        cycle = await api.put("/api/v1/jobs/A", json={"command": "true", "cronExpr": "@yearly",
                                                      "after": {"job": "B"}})
        assert cycle.status_code == 422
        assert cycle.json()["error"] == {
            "code": "chain_cycle", "field": "after",
            "message": "chain cycle A → B → A: job 'A' would run after a job that runs after it"}

        env = {**os.environ, "SCHEDULER_URL": url, "SCHEDULER_API_TOKEN": token}
        put = await trio.to_thread.run_sync(lambda: subprocess.run(
            [sys.executable, "-m", "master.cli", "jobs", "put", "A", "--command", "true",
             "--cron", "@yearly", "--after", "B"],
            env=env, capture_output=True, text=True, timeout=30))
        assert put.returncode != 0 and put.stdout == ""
        [line] = put.stderr.strip().splitlines()
        assert "chain cycle A → B → A" in line and "Traceback" not in put.stderr

        a = (await api.get("/api/v1/jobs/A")).json()["job"]
        assert a["after"] is None and a["downstream"] == [{"job": "B", "on": "succeeded"}]
        run_id = (await api.post("/api/v1/jobs/A/run")).json()["runId"]
        with trio.fail_after(20):
            while not (runs := (await api.get("/api/v1/jobs/B/runs")).json()["runs"]):
                await trio.sleep(0.3)
        [b] = runs
        assert b["trigger"] == "chain" and b["status"] == "succeeded"
        assert b["output"] == "chained\n"
        assert f"chained after run {run_id} of job 'A' (succeeded)" in b["err"]
