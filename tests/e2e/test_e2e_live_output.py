"""Live output against a real master and worker: a job prints a line every 0.3 s for
3 s; its stream (GET /api/v1/runs/<runId>/output) yields the lines while it runs, then
``end`` with ``succeeded``; ``schedctl runs logs RUN --follow`` prints the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import httpx
import pytest
import trio

from master.cli._sse import SseParser

from e2e_harness import serve_master

pytestmark = pytest.mark.slow

TOKEN = "e2e-token-" + uuid.uuid4().hex
TICKS = 10
COMMAND = f"for i in $(seq 1 {TICKS}); do echo tick $i; sleep 0.3; done; echo done >&2"


@pytest.fixture
async def master_url(make_cluster, mysql_url):
    yield await serve_master(make_cluster(mysql_url), TOKEN, "lw1")


def api(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"},
                             timeout=httpx.Timeout(10.0, read=None))


async def start_run(client: httpx.AsyncClient, job: str) -> str:
    answer = await client.post(f"/api/v1/jobs/{job}/run")
    assert answer.status_code == 202, answer.text
    return answer.json()["runId"]


async def test_the_stream_yields_lines_while_the_run_goes_on_then_its_end(master_url):
    async with api(master_url) as client:
        answer = await client.put("/api/v1/jobs/ticker", json={"command": COMMAND,
                                                                "cronExpr": "@yearly"})
        assert answer.status_code == 201, answer.text
        run_id = await start_run(client, "ticker")
        arrivals: list[tuple[float, str, dict]] = []  # (monotonic, event, data)
        with trio.fail_after(30):
            while True:  # 404 until a worker claimed it (its running key)
                async with client.stream("GET", f"/api/v1/runs/{run_id}/output") as stream:
                    if stream.status_code == 404:
                        await stream.aread()
                        await trio.sleep(0.1)
                        continue
                    assert stream.status_code == 200
                    parser = SseParser()
                    async for text in stream.aiter_text():
                        for event in parser.feed(text):
                            arrivals.append((time.monotonic(), event.event,
                                             json.loads(event.data)))
                    break
        kinds = [kind for _, kind, _ in arrivals]
        assert kinds[-1] == "end" and kinds.count("end") == 1
        end_at, _, end = arrivals[-1]
        assert end["status"] == "succeeded" and end["exitCode"] == 0
        out = [(at, d["data"]) for at, kind, d in arrivals if kind == "output"
               and d["stream"] == "out"]
        assert "".join(text for _, text in out) == "".join(f"tick {i}\n"
                                                          for i in range(1, TICKS + 1))
        err = [d["data"] for _, kind, d in arrivals if kind == "output" and d["stream"] == "err"]
        assert "".join(err) == "done\n"
        first_at = next(at for at, text in out if "tick 1\n" in text)
        last_at = next(at for at, text in out if f"tick {TICKS}\n" in text)
        # Arrived as printed: tick 1 about 2.7 s before tick 10, and well before the end.
        assert last_at - first_at >= 1.5, arrivals
        assert end_at - first_at >= 2.0, arrivals
        assert len(out) >= 5  # batched per 250 ms, not one dump at the end
        record = (await client.get(f"/api/v1/runs/{run_id}")).json()["run"]
        assert record["status"] == "succeeded"
        assert record["output"] == "".join(text for _, text in out)


async def test_schedctl_runs_logs_follow_prints_the_output_to_the_end(master_url):
    async with api(master_url) as client:
        await client.put("/api/v1/jobs/ticker2", json={"command": COMMAND, "cronExpr": "@yearly"})
        run_id = await start_run(client, "ticker2")
        with trio.fail_after(15):  # its running key: the stream answers 200 from then on
            while (await client.get(f"/api/v1/jobs/ticker2")).json()["job"]["running"] == []:
                await trio.sleep(0.1)
    env = {**os.environ, "SCHEDULER_URL": master_url, "SCHEDULER_API_TOKEN": TOKEN}
    started = time.monotonic()
    done = await trio.to_thread.run_sync(lambda: subprocess.run(
        [sys.executable, "-m", "master.cli", "runs", "logs", run_id, "--follow"],
        env=env, capture_output=True, text=True, timeout=30))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "".join(f"tick {i}\n" for i in range(1, TICKS + 1))
    assert "done\n" in done.stderr
    assert done.stderr.rstrip().endswith(f"[run {run_id} succeeded, exit 0]")
    assert time.monotonic() - started < 20
