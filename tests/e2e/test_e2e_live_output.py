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
# The same, each line with the epoch ms it was printed at: the stream's latency.
STAMPED = (f"for i in $(seq 1 {TICKS}); do echo tick $i $(date +%s%3N); sleep 0.3; done; "
           "echo done >&2")


@pytest.fixture
async def master_url(make_cluster, mysql_url):
    yield await serve_master(make_cluster(mysql_url), TOKEN, "lw1")


@pytest.fixture(params=["mysql", "sqlite"])
async def any_store_master_url(request, make_cluster, tmp_path):
    """MariaDB, or one SQLite file the worker and the master share (``make run``)."""
    url = (request.getfixturevalue("mysql_url") if request.param == "mysql"
           else f"sqlite:///{tmp_path}/runs.db")
    yield await serve_master(make_cluster(url), TOKEN, "lw1")


def api(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"},
                             timeout=httpx.Timeout(10.0, read=None))


async def start_run(client: httpx.AsyncClient, job: str) -> str:
    answer = await client.post(f"/api/v1/jobs/{job}/run")
    assert answer.status_code == 202, answer.text
    return answer.json()["runId"]


async def test_the_stream_yields_lines_while_the_run_goes_on_then_its_end(
        any_store_master_url):
    async with api(any_store_master_url) as client:
        answer = await client.put("/api/v1/jobs/ticker", json={"command": STAMPED,
                                                                "cronExpr": "@yearly"})
        assert answer.status_code == 201, answer.text
        run_id = await start_run(client, "ticker")
        arrivals: list[tuple[float, str, dict]] = []  # (monotonic, event, data)
        latencies: list[float] = []  # ms from a line's printing to its arrival here
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
                            if event.event == "output":
                                latencies += [time.time() * 1000 - int(line.split()[2])
                                              for line in arrivals[-1][2]["data"].splitlines()
                                              if line.startswith("tick ")]
                    break
        kinds = [kind for _, kind, _ in arrivals]
        assert kinds[-1] == "end" and kinds.count("end") == 1
        end_at, _, end = arrivals[-1]
        assert end["status"] == "succeeded" and end["exitCode"] == 0
        out = [(at, d["data"]) for at, kind, d in arrivals if kind == "output"
               and d["stream"] == "out"]
        lines = "".join(text for _, text in out).splitlines()
        assert [" ".join(x.split()[:2]) for x in lines] == [f"tick {i}" for i in
                                                            range(1, TICKS + 1)]
        assert len(latencies) == TICKS
        latencies.sort()
        print(f"live output latency, printed to read: median {latencies[TICKS // 2]:.0f} ms, "
              f"max {latencies[-1]:.0f} ms")
        assert latencies[-1] < 1500  # 250 ms flush + 200 ms poll, with room for a busy box
        err = [d["data"] for _, kind, d in arrivals if kind == "output" and d["stream"] == "err"]
        assert "".join(err) == "done\n"
        first_at = next(at for at, text in out if "tick 1 " in text)
        last_at = next(at for at, text in out if f"tick {TICKS} " in text)
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


def test_the_ui_panel_shows_lines_as_they_arrive_then_the_status(mysql_url, make_cluster,
                                                                 tmp_path):
    """A real Chromium on the real master: the Runs view of a job shows its run going on
    with a "Live output" button; the panel fills while the run goes on, then says how
    it ended."""
    import services
    from chromium_kit import TIMEOUT_MS, launched_chromium, sync_api  # skips without it

    cluster = make_cluster(mysql_url)
    port = services.free_port()
    cluster.add_master(port, TOKEN)
    url = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=10)

    def wait_for(what: str, done, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            assert time.monotonic() < deadline, f"no {what} within {timeout_s} s"
            time.sleep(0.05)

    def healthy() -> bool:
        try:
            return client.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    wait_for("healthy master", healthy)
    cluster.add_worker("ui-w1")
    wait_for("worker", lambda: len(client.get("/api/v1/workers").json()["workers"]) == 1)
    slow = "for i in $(seq 1 20); do echo tick $i; sleep 0.3; done; echo oops >&2"
    assert client.put("/api/v1/jobs/ui-ticker", json={"command": slow,
                                                      "cronExpr": "@yearly"}).status_code == 201
    with launched_chromium() as chromium:
        page = chromium.new_page(viewport={"width": 1360, "height": 860})
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        expect = sync_api.expect
        page.goto(url + "/#runs?job=ui-ticker")
        page.fill("#token-input", TOKEN)
        page.locator("#token-dialog").get_by_role("button", name="Save").click()
        run_id = client.post("/api/v1/jobs/ui-ticker/run").json()["runId"]
        button = page.locator(f'.running-run[data-run="{run_id}"] button.live-toggle')
        expect(button).to_be_visible(timeout=15_000)  # run.started refreshes the view
        button.click()
        text = page.locator(f'.live-output[data-run="{run_id}"] pre.live-text')
        status = page.locator(f'.live-output[data-run="{run_id}"] .live-status')
        expect(text).to_contain_text("tick 3", timeout=10_000)
        assert "Ended" not in status.inner_text()  # lines arrived while it ran
        seen_mid = text.inner_text()
        expect(status).to_contain_text("Ended: succeeded", timeout=20_000)
        final = text.inner_text()
        assert final.startswith(seen_mid.rstrip("\n")[:6])
        assert all(f"tick {i}\n" in final for i in range(1, 21)) and "oops" in final
        assert page.locator(".live-output .live-err").first.inner_text() == "oops\n"
        # It followed the end: 21 lines overflow the box, the last one is in view.
        assert text.evaluate("e => e.scrollHeight > e.clientHeight && "
                             "e.scrollTop + e.clientHeight >= e.scrollHeight - 4")
        page.screenshot(path=str(tmp_path / "live-output.png"), full_page=True)
        assert errors == []
