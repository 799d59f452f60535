"""The real thing: hypercorn in the master's trio.run, and ``python -m master``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from master import run_master

from master_testkit import AUTH, make_config

ROOT = Path(__file__).resolve().parents[2]
SPEC = {"command": "true", "cronExpr": "*/10 * * * * *"}


async def test_hypercorn_serves_the_api_and_stops_on_sigterm(tmp_path, etcd_endpoint,
                                                             etcd_prefix):
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(30):
            url = await nursery.start(run_master, config)
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            saved = await client.put("/api/v1/jobs/real", json=SPEC, headers=AUTH)
            assert saved.status_code == 201
            listed = await client.get("/api/v1/jobs", headers=AUTH)
            assert [j["name"] for j in listed.json()["jobs"]] == ["real"]
            assert (await client.get("/api/v1/jobs")).status_code == 401
            health = await client.get("/healthz")
            assert health.status_code == 200 and health.json()["status"] == "ok"
            ui = await client.get("/")
            assert ui.status_code == 200 and ui.headers["content-type"].startswith("text/html")
            assert "default-src 'self'" in ui.headers["content-security-policy"]
            big = await client.put("/api/v1/jobs/big", content=b"{" + b" " * 300_000 + b"}",
                                   headers={**AUTH, "Content-Type": "application/json"})
            assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"
            raw = await client.put("/api/v1/jobs/a%2Fb", json=SPEC, headers=AUTH)
            assert raw.status_code == 400 and raw.json()["error"]["field"] == "name"
            # Refused before its body was read: the next request still gets through.
            unread = await client.put("/api/v1/jobs/x", content=b"{" + b" " * 100_000 + b"}",
                                      headers={"Content-Type": "application/json"})
            assert unread.status_code == 401 and unread.headers["connection"] == "close"
            assert (await client.get("/api/v1/jobs", headers=AUTH)).status_code == 200
        with trio.fail_after(30):
            signal.raise_signal(signal.SIGTERM)  # run_until_signalled owns SIGTERM now
            # run_master returns by itself: the nursery then closes.
    async with httpx.AsyncClient(timeout=2) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(url + "/healthz")


async def test_metrics_port_serves_metrics_without_token(tmp_path, etcd_endpoint, etcd_prefix):
    port = free_port()
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix, metrics_port=port)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(run_master, config)
        async with httpx.AsyncClient(timeout=10) as client:
            await client.get(url + "/api/v1/jobs", headers=AUTH)
            scraped = await client.get(f"http://127.0.0.1:{port}/metrics")
            assert scraped.status_code == 200
            assert 'route="/api/v1/jobs",status="200"' in scraped.text
            other = await client.get(f"http://127.0.0.1:{port}/api/v1/jobs")
            assert other.status_code == 404  # nothing but /metrics there
            assert (await client.get(url + "/metrics")).status_code == 401
        signal.raise_signal(signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def master_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    return subprocess.run([sys.executable, "-m", "master", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, env={**clean, **(env or {})},
                          stdin=subprocess.DEVNULL)


def test_help_describes_the_master():
    done = master_cli("--help")
    assert done.returncode == 0
    for words in ("--token", "--host", "--port", "--webapp", "/healthz", "loopback",
                  "--log-retention-days", "SCHEDULER_", "--tokens-file", "operate",
                  "/api/v1/audit", "schedctl token add"):
        assert words in done.stdout, words
    assert "--capacity" not in done.stdout  # worker-only settings are not offered


@pytest.mark.parametrize("args, env, says", [
    (["--port", "99999"], {}, "api_port"),
    (["--etcd", "nohostport"], {}, "etcd_endpoints"),
    (["--log-retention-days", "0"], {}, "log_retention_days"),
    ([], {"SCHEDULER_API_PORTT": "1"}, "SCHEDULER_API_PORTT"),
    (["--host", "0.0.0.0"], {}, "without an API token"),
    (["--host", "192.0.2.1", "--port", "8070"], {}, "non-loopback"),
])
def test_bad_settings_exit_2_with_one_line(args, env, says):
    done = master_cli(*args, env=env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("master: ") and says in lines[0]


def test_token_is_never_logged(tmp_path):
    with socket.socket() as busy:  # port taken: the master stops right after logging
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = master_cli("--port", str(port), "--token", "tok-XYZ-123",
                          "--db", f"sqlite:///{tmp_path}/r.db")
    assert done.returncode == 1
    assert "cannot listen on 127.0.0.1" in done.stderr
    assert "tok-XYZ-123" not in done.stderr + done.stdout
    assert "'api_token': '***'" in done.stderr
