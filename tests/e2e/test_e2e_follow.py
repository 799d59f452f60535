"""`schedctl runs --follow` against a real master and MariaDB, while 1,000 runs a second
are recorded: every one is printed exactly once, in the order it was recorded.

Two writers insert at once (as two workers' LogSinks do), so ids are handed out in one
order and committed in another: the follow cursor's holes are exercised too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import trio

import services
from cluster.store import RunRecord, open_store
from e2e_harness import ROOT, wait_healthy

pytestmark = pytest.mark.slow

TOKEN = "e2e-token-" + uuid.uuid4().hex
PER_SECOND = 1_000
SECONDS = 5
BATCH = 50  # records per write, as a LogSink batches them


def record(job: str, run_id: str, now_ms: int) -> RunRecord:
    return RunRecord(run_id=run_id, job_name=job, worker="w1", command="true", output="",
                     err="", exit_code=0, status="succeeded", trigger="schedule", attempt=1,
                     plan_time=now_ms, schedule_time=now_ms, start_time=now_ms,
                     end_time=now_ms + 1)


async def write_at_rate(db_url: str, job: str, writer: int, per_second: int,
                        written: list[str]) -> None:
    """``per_second`` records a second for SECONDS, in batches of BATCH, on a fixed beat."""
    batches = per_second * SECONDS // BATCH
    async with open_store(db_url) as store:
        start = trio.current_time()
        for b in range(batches):
            await trio.sleep_until(start + b * BATCH / per_second)
            now_ms = time.time_ns() // 1_000_000
            batch = [record(job, f"w{writer}-{b:05d}-{i:03d}", now_ms) for i in range(BATCH)]
            await store.write_batch(batch)
            written.extend(r.run_id for r in batch)
        assert trio.current_time() - start < SECONDS + 2, "the writer could not keep the rate"


async def test_follow_prints_every_run_once_at_1000_per_second(make_cluster, mysql_url):
    cluster = make_cluster(mysql_url)
    port = services.free_port()
    master = cluster.add_master(port, TOKEN)
    url = f"http://127.0.0.1:{port}"
    await wait_healthy(url, master)
    job = "flood-" + uuid.uuid4().hex[:8]
    async with open_store(mysql_url) as store:  # history before the follow starts
        await store.write_batch([record(job, f"old-{i}", 1_000 + i) for i in range(30)])
    env = {**os.environ, "SCHEDULER_URL": url, "SCHEDULER_API_TOKEN": TOKEN}
    out_path = cluster.base_dir / "follow.jsonl"
    with open(out_path, "wb") as out:
        follow = subprocess.Popen(
            [sys.executable, "-m", "master.cli", "--json", "runs", "--job", job, "--follow",
             "--limit", "5"], stdout=out, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    try:
        with trio.fail_after(30):  # the first page printed: the follow cursor is set
            while out_path.read_bytes().count(b"\n") < 5:
                assert follow.poll() is None, follow.stderr.read()
                await trio.sleep(0.1)
        first, second = [], []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(write_at_rate, mysql_url, job, 1, PER_SECOND // 2, first)
            nursery.start_soon(write_at_rate, mysql_url, job, 2, PER_SECOND // 2, second)
        written = len(first) + len(second)
        assert written == PER_SECOND * SECONDS
        with trio.fail_after(20):  # it keeps up: done within seconds of the last write
            while out_path.read_bytes().count(b"\n") < 5 + written:
                assert follow.poll() is None, follow.stderr.read()
                await trio.sleep(0.1)
        await trio.sleep(2)  # nothing more comes
    finally:
        follow.send_signal(signal.SIGINT)
        code = follow.wait(10)
    assert code == 0, follow.stderr.read()
    printed = [json.loads(line)["runId"] for line in out_path.read_text().splitlines()]
    assert printed[:5] == [f"old-{i}" for i in range(25, 30)]  # the newest 5, oldest first
    followed = printed[5:]
    assert len(followed) == len(set(followed)) == written  # each once, none missed
    assert set(followed) == set(first) | set(second)
    # In order: each writer's records in the order it wrote them.
    assert [r for r in followed if r.startswith("w1-")] == first
    assert [r for r in followed if r.startswith("w2-")] == second
