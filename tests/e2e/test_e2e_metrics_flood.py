"""A flood of idle connections to a worker's metrics port stops no fire (issue #10).

The audit's finding: 3,000 idle connections used up the worker's file descriptors,
and every fire for 25 s failed with "Too many open files". Here a real worker, started
with the common soft limit of 1024 open files, gets 3,000 idle loopback connections
while a job fires every second for ~10 s: every second's run succeeds, and /metrics
answers again once the flood ends.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time

import httpx
import pytest
import trio

import services
from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.store import open_store
from e2e_harness import ROOT, all_records, check_fires, put_every_second, wall_ms

pytestmark = pytest.mark.slow

FLOOD = 3000
FLOOD_OPEN_S = 20  # the most time spent opening connections
FLOOD_HOLD_S = 10
WORKER_NOFILE = 1024  # a login shell's usual soft limit


def worker_nofile() -> None:
    """In the worker's child, before exec: the soft limit most machines start with."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (WORKER_NOFILE, hard))


def raise_own_nofile(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"the test needs {needed} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def open_flood(port: int) -> list[socket.socket]:
    """Up to FLOOD idle connections (loopback), within FLOOD_OPEN_S."""
    sockets: list[socket.socket] = []
    deadline = time.monotonic() + FLOOD_OPEN_S
    while len(sockets) < FLOOD and time.monotonic() < deadline:
        sock = socket.socket()
        sock.settimeout(1.0)
        try:
            sock.connect(("127.0.0.1", port))
        except OSError:
            sock.close()  # the listen queue is full: the kernel dropped our SYN
            continue
        sockets.append(sock)
    return sockets


async def metrics_answer(url: str, timeout_s: float) -> httpx.Response | None:
    async with httpx.AsyncClient(timeout=5) as client:
        with trio.move_on_after(timeout_s):
            while True:
                try:
                    return await client.get(url)
                except httpx.TransportError:
                    await trio.sleep(0.2)
    return None


async def test_a_connection_flood_of_the_metrics_port_stops_no_fire(
        etcd_endpoint, etcd_prefix, tmp_path):
    raise_own_nofile(FLOOD + 1000)
    port = services.free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    db = f"sqlite:///{tmp_path}/runs.db"
    log_path = tmp_path / "worker.log"
    args = [sys.executable, "-m", "worker", "--etcd", etcd_endpoint, "--prefix", etcd_prefix,
            "--db", db, "--state-dir", str(tmp_path / "state"), "--id", "flood-w1",
            "--metrics-port", str(port), "--shutdown-grace-s", "5"]
    ks = Keyspace(etcd_prefix)
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                  cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                  preexec_fn=worker_nofile)
    flood: list[socket.socket] = []
    try:
        first = await metrics_answer(url, 30)
        assert first is not None and first.status_code == 200, log_path.read_text()
        async with open_etcd((etcd_endpoint,), timeout_s=5) as etcd:
            await put_every_second(etcd, ks, ["flood-tick"], "true")
        flood = await trio.to_thread.run_sync(open_flood, port)
        start_ms = (wall_ms() // 1000 + 1) * 1000  # every fire from here is under the flood
        await trio.sleep(FLOOD_HOLD_S)
        end_ms = wall_ms() // 1000 * 1000
        assert len(flood) == FLOOD, f"only {len(flood)} connections opened"
    finally:
        for sock in flood:
            sock.close()
    try:
        after = await metrics_answer(url, 60)
        assert after is not None and after.status_code == 200, "no /metrics after the flood"
    finally:
        worker.send_signal(15)
        code = await trio.to_thread.run_sync(worker.wait, 60)
    logs = log_path.read_text(errors="replace")
    assert code == 0, logs[-3000:]
    assert "Too many open files" not in logs, logs[-3000:]
    async with open_store(db) as store:
        records = await all_records(store, "flood-tick")
    in_window = [r for r in records if start_ms <= r.plan_time < end_ms]
    check = check_fires(in_window, ["flood-tick"], start_ms, end_ms)
    assert end_ms - start_ms >= 8000
    assert check.missed == [] and check.repeated == [], (check, logs[-3000:])
    assert {r.status for r in in_window} == {"succeeded"}, [(r.plan_time, r.status, r.err)
                                                            for r in in_window]
