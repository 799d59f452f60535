"""Three workers whose wall clocks disagree (+3 s, -3 s, 0), five jobs every second.

Each worker runs under Debian's ``faketime`` (libfaketime preloaded: the whole process,
as on a machine whose clock is off; trio's monotonic clock is left true). The jobs
undo the preload for themselves (their ``env``) and print the true time at which their
command started, so lateness is measured against the true clock, which is also the
etcd server's and the master's here (one machine). Counted: fires expected, run,
doubled, missed; lateness per worker.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections import Counter, defaultdict

import httpx
import pytest
import trio

import services
from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.store import RunStatus, open_store
from e2e_harness import all_records, check_fires, put_job, wait_healthy, wait_registered, wall_ms

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("faketime") is None,
                                 reason="needs Debian's faketime (scripts/test.sh installs it)")]

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
SKEWS = {"ahead": "+3s", "behind": "-3s", "even": "+0s"}
JOBS = [f"skew{j}" for j in range(5)]
WINDOW_S = 20
TOKEN = "skew-token-" + uuid.uuid4().hex


def skewed(offset: str) -> dict[str, str]:
    return {"LD_PRELOAD": LIBFAKETIME, "FAKETIME": offset,
            "FAKETIME_DONT_FAKE_MONOTONIC": "1", "FAKETIME_NO_CACHE": "1"}


def percentiles(values: list[int]) -> list[int]:
    ordered = sorted(values)
    return [ordered[0], ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.95)], ordered[-1]]


async def test_skewed_workers_neither_double_nor_miss_nor_start_early(make_cluster, mysql_url):
    cluster = make_cluster(mysql_url)
    ks = Keyspace(cluster.prefix)
    port = services.free_port()
    master = cluster.add_master(port, TOKEN)
    async with open_etcd([cluster.etcd_endpoint]) as etcd:
        for worker_id, offset in SKEWS.items():
            cluster.add_worker(worker_id, env=skewed(offset))
        await wait_registered(etcd, ks, set(SKEWS))
        await wait_healthy(f"http://127.0.0.1:{port}", master)
        await trio.sleep(4)  # a republication or two: every worker has seen the others'
        for name in JOBS:  # the job's own process reads the true clock
            await put_job(etcd, ks, name, "date +%s%3N", "* * * * * *", concurrency="allow",
                          env={"LD_PRELOAD": "", "FAKETIME": "+0s"})
        window_start = (wall_ms() // 1000 + 5) * 1000  # past the behind worker's catch-up
        window_end = window_start + WINDOW_S * 1000
        await trio.sleep((window_end - wall_ms()) / 1000 + 5)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as api:
            workers = (await api.get("/api/v1/workers")).json()["workers"]
            health = await api.get("/healthz")
            metrics = (await api.get("/metrics")).text
        for process in cluster.workers:
            assert process.alive(), cluster.logs()
        cluster.stop_all()
    async with open_store(mysql_url) as store:
        records = [r for r in await all_records(store, "skew")
                   if window_start <= r.plan_time < window_end]

    fires = check_fires(records, JOBS, window_start, window_end)
    runs = Counter(r.worker for r in records)
    lateness = defaultdict(list)
    for r in records:
        lateness[r.worker].append(int(r.output.strip()) - r.plan_time)
    report = {w: {"runs": runs[w], "late_ms_min_p50_p95_max": percentiles(v)}
              for w, v in lateness.items()}
    print(json.dumps({"expected": len(JOBS) * WINDOW_S, "run": len(records),
                      "doubled": len(fires.repeated), "missed": len(fires.missed),
                      "per_worker": report}, indent=1))
    print(json.dumps([{k: w[k] for k in ("id", "skewMs")} for w in workers]))
    print(health.status_code, health.text)
    print("\n".join(line for line in metrics.splitlines() if "skew" in line))
    assert fires.unexpected == set()
    assert fires.repeated == []  # doubled: none
    assert fires.missed == []  # missed: none
    assert len(records) == len(JOBS) * WINDOW_S
    assert {r.status for r in records} == {RunStatus.SUCCEEDED}
    # The fleet outvotes the two skewed clocks: the worker in step runs every fire, on
    # time by the true clock; none starts early (1 ms: date's rounding).
    assert runs == Counter({"even": len(records)}), report
    late = sorted(lateness["even"])
    assert late[0] >= -1, report
    assert late[int(len(late) * 0.95)] <= 50 and late[-1] <= 500, report
    # What the operator sees: the skews, the warning in /healthz, the metrics, the log.
    skews = {w["id"]: w["skewMs"] for w in workers}
    assert 2_700 <= skews["ahead"] <= 3_300 and -3_300 <= skews["behind"] <= -2_700, skews
    assert abs(skews["even"]) <= 300, skews
    assert health.status_code == 200
    detail = health.json()
    assert detail["status"] == "degraded" and detail["clock"]["ok"] is False
    assert "'ahead'" in detail["clock"]["error"] and "'behind'" in detail["clock"]["error"]
    assert "'even'" not in detail["clock"]["error"]
    assert "scheduler_master_workers_clock_skewed 2.0" in metrics
    master_log = (cluster.base_dir / "master.log").read_text()
    assert master_log.count("clock skew: worker 'ahead': clock +") == 1, master_log[-3000:]
    for worker_id in ("ahead", "behind"):
        worker_log = (cluster.base_dir / f"{worker_id}.log").read_text()
        assert worker_log.count("clock skew: this worker's clock is") == 1, worker_log[-3000:]
