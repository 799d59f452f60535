"""Prometheus metrics: the shared pieces (registries, bucket counts), the worker's
metrics read from its actors' statistics, its /metrics server, and a real worker process
scraped while a job fires every second."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import trio
from prometheus_client import Counter

from actors import Actor, Inbox, open_mailbox
from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.metrics import BadBuckets, BucketCounter, histogram_family, new_registry, render
from cluster.store import RunStatus, RunTrigger
from master.metrics import Metrics
from worker.executor.actor import ExecutorStatistics
from worker.executor.run_tally import LATENESS_BOUNDS_S, RunTally
from worker.locker.statistics import LockerStatistics
from worker.metrics import WorkerMetrics
from worker.metrics_http import MAX_HEAD_BYTES, CannotServeMetrics, MetricsServer, respond
from worker.scheduler.actor import SchedulerStatistics

ROOT = Path(__file__).resolve().parents[2]
W = "scheduler_worker_"

COMMENT_LINE = re.compile(r"^# (?P<what>HELP|TYPE) (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*) (?P<rest>.+)$")
SAMPLE_LINE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)'
    r'(?:\{(?P<labels>[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*)\})?'
    r' (?P<value>-?[0-9.eE+-]+|NaN|[+-]Inf)$')


def parse(text: str | bytes) -> dict[tuple[str, str], float]:
    """Every sample by (name, labels); asserts the text is valid format 0.0.4 line by line:
    each family has HELP then TYPE before its samples, and samples belong to it."""
    if isinstance(text, bytes):
        text = text.decode()
    assert text.endswith("\n")
    samples: dict[tuple[str, str], float] = {}
    family, kind = None, None
    for line in text.splitlines():
        comment = COMMENT_LINE.match(line)
        if comment and comment["what"] == "HELP":
            family, kind = comment["name"], None
            continue
        if comment:
            assert comment["name"] == family, f"TYPE without its HELP: {line!r}"
            kind = comment["rest"]
            assert kind in ("counter", "gauge", "histogram"), line
            continue
        match = SAMPLE_LINE.match(line)
        assert match, f"not a sample line: {line!r}"
        suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
        assert match["name"] in {f"{family}{s}" for s in suffixes}, f"sample outside its family: {line!r}"
        key = (match["name"], match["labels"] or "")
        assert key not in samples, f"duplicate sample: {line!r}"
        samples[key] = float(match["value"])
    return samples


# -- the shared pieces ---------------------------------------------------------------------


def test_each_registry_keeps_its_own_counts_and_no_created_series():
    first, second = new_registry(), new_registry()
    hits = Counter("p_hits_total", "Hits,\nby path \\ kind.", ("path",), registry=first)
    Counter("p_hits_total", "Hits.", ("path",), registry=second)  # same name: no clash
    hits.labels('a"b\\c\nd').inc()
    hits.labels("plain").inc(2)
    text = render(first).decode()
    assert text.splitlines()[:4] == [
        "# HELP p_hits_total Hits,\\nby path \\\\ kind.",
        "# TYPE p_hits_total counter",
        'p_hits_total{path="a\\"b\\\\c\\nd"} 1.0',
        'p_hits_total{path="plain"} 2.0',
    ]
    assert "_created" not in text
    assert parse(text)[("p_hits_total", 'path="plain"')] == 2
    assert parse(render(second)) == {}


def test_two_masters_and_two_workers_in_one_process_count_apart():
    masters = Metrics(), Metrics()
    masters[0].etcd_errors.inc()
    assert masters[0].value("etcd_errors_total") == 1
    assert masters[1].value("etcd_errors_total") == 0
    workers = WorkerMetrics(), WorkerMetrics()
    _, inbox = open_mailbox[str](4, name="scheduler")
    workers[0].scheduler.track(FakeScheduler(inbox, fires=5, jobs=3))
    assert parse(workers[0].render())[(W + "fires_total", "")] == 5
    assert (W + "fires_total", "") not in parse(workers[1].render())


def test_bucket_counts_are_inclusive_and_cumulative_with_le_spelled_as_before():
    counter = BucketCounter((0.001, 0.01, 1.0, 10))
    for value in (-0.5, 0.0, 0.001, 0.0011, 0.01, 0.5, 1.0, 1.0001, 99):
        counter.observe(value)
    counts = counter.snapshot()
    assert counts.cumulative() == (3, 5, 7, 8, 9)  # le=0.001, 0.01, 1, 10, +Inf
    assert counts.count == 9 and counts.sum == pytest.approx(101.0122)
    registry = new_registry()
    family = histogram_family("lat_seconds", "x", counts + counts)  # two incarnations
    registry.register(type("One", (), {"collect": lambda self: [family]})())
    samples = parse(render(registry))
    assert samples[("lat_seconds_bucket", 'le="0.001"')] == 6
    assert samples[("lat_seconds_bucket", 'le="1"')] == 14  # "1", not "1.0": unchanged
    assert samples[("lat_seconds_bucket", 'le="10"')] == 16
    assert samples[("lat_seconds_bucket", 'le="+Inf"')] == 18
    assert samples[("lat_seconds_count", "")] == 18
    assert samples[("lat_seconds_sum", "")] == pytest.approx(202.0244)


@pytest.mark.parametrize("bounds", [(), (1, 1), (2, 1), (1, math.inf), (math.nan,)])
def test_histogram_bounds_must_be_finite_and_increasing(bounds):
    with pytest.raises(BadBuckets, match="strictly increasing"):
        BucketCounter(bounds)


# -- the worker's metrics ------------------------------------------------------------------


class FakeScheduler(Actor[str]):
    def __init__(self, inbox: Inbox[str], fires: int, jobs: int) -> None:
        super().__init__(inbox)
        self.fires, self.jobs = fires, jobs

    def statistics_detail(self) -> SchedulerStatistics:
        return SchedulerStatistics(self.jobs, self.fires, 0, 0, 0, True)


def test_worker_counts_add_up_across_restarts_and_gauges_do_not():
    metrics = WorkerMetrics()
    before = parse(metrics.render())
    assert (W + "fires_total", "") not in before  # nothing tracked yet: no sample
    assert before[(W + "runs_total", 'status="succeeded"')] == 0
    assert before[(W + "runs_total", 'status="replaced"')] == 0  # shown from the start
    assert before[(W + "fire_lateness_seconds_count", "")] == 0
    address, inbox = open_mailbox[str](4, name="scheduler")
    metrics.scheduler.track(FakeScheduler(inbox, fires=5, jobs=3))
    metrics.scheduler.track(FakeScheduler(inbox, fires=2, jobs=4))  # rebuilt after a crash
    address.send_nowait("queued")
    samples = parse(metrics.render())
    assert samples[(W + "fires_total", "")] == 7
    assert samples[(W + "jobs", "")] == 4
    assert samples[(W + "actor_restarts_total", 'actor="scheduler"')] == 1
    assert samples[(W + "mailbox_depth", 'actor="scheduler"')] == 1
    assert samples[(W + "mailbox_capacity", 'actor="scheduler"')] == 4


class FakeExecutor(Actor[str]):
    def __init__(self, inbox: Inbox[str], not_allowed: int, unknown: int,
                 tally: RunTally | None = None) -> None:
        super().__init__(inbox)
        self.not_allowed, self.unknown = not_allowed, unknown
        self.tally = tally or RunTally()

    def statistics_detail(self) -> ExecutorStatistics:
        return ExecutorStatistics(0, 0, 0, 0, 0, 0, 0, user_not_allowed=self.not_allowed,
                                  unknown_user=self.unknown, runs=self.tally.statistics())


def test_runs_refused_for_their_user_are_counted_by_reason_across_restarts():
    metrics = WorkerMetrics()
    _, inbox = open_mailbox[str](4, name="executor")
    metrics.executor.track(FakeExecutor(inbox, not_allowed=2, unknown=0))
    assert parse(metrics.render())[(W + "runs_refused_total", 'reason="unknown_user"')] == 0
    metrics.executor.track(FakeExecutor(inbox, not_allowed=1, unknown=3))  # rebuilt
    samples = parse(metrics.render())
    assert samples[(W + "runs_refused_total", 'reason="user_not_allowed"')] == 3
    assert samples[(W + "runs_refused_total", 'reason="unknown_user"')] == 3


def test_lateness_is_observed_for_scheduled_fires_only_and_adds_up_across_restarts():
    metrics = WorkerMetrics()
    _, inbox = open_mailbox[str](4, name="executor")
    first, second = RunTally(), RunTally()
    metrics.executor.track(FakeExecutor(inbox, 0, 0, first))
    first.started(RunTrigger.SCHEDULE, planned_ms=10_000, start_ms=10_004)
    first.started(RunTrigger.RETRY, planned_ms=10_000, start_ms=70_000)
    first.ended(RunStatus.SUCCEEDED)
    metrics.executor.track(FakeExecutor(inbox, 0, 0, second))  # rebuilt after a crash
    second.started(RunTrigger.SCHEDULE, planned_ms=10_000, start_ms=13_000)
    second.started(RunTrigger.MANUAL, planned_ms=10_000, start_ms=10_001)
    second.ended(RunStatus.TIMEOUT)
    second.ended(RunStatus.SUCCEEDED)
    samples = parse(metrics.render())
    assert LATENESS_BOUNDS_S[0] == 0.001 and LATENESS_BOUNDS_S[-1] == 10
    assert samples[(W + "fire_lateness_seconds_count", "")] == 2
    assert samples[(W + "fire_lateness_seconds_bucket", 'le="0.005"')] == 1
    assert samples[(W + "fire_lateness_seconds_bucket", 'le="2.5"')] == 1
    assert samples[(W + "fire_lateness_seconds_bucket", 'le="5"')] == 2
    assert samples[(W + "fire_lateness_seconds_sum", "")] == pytest.approx(3.004)
    assert samples[(W + "runs_total", 'status="succeeded"')] == 2
    assert samples[(W + "runs_total", 'status="timeout"')] == 1
    assert samples[(W + "runs_total", 'status="lost"')] == 0


def test_tracking_the_same_incarnation_again_counts_it_once():
    metrics = WorkerMetrics()
    _, inbox = open_mailbox[str](4, name="scheduler")
    scheduler = FakeScheduler(inbox, fires=5, jobs=3)
    metrics.scheduler.track(scheduler)
    metrics.scheduler.track(scheduler)  # a ready instance, rerun as is
    assert parse(metrics.render())[(W + "fires_total", "")] == 5


# -- the /metrics server ---------------------------------------------------------------------


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_respond_routes_and_methods():
    def render() -> bytes:
        return b"x 1\n"

    ok = respond(b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", render)
    assert status_of(ok) == 200 and ok.endswith(b"\r\n\r\nx 1\n")
    assert b"Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n" in ok
    assert status_of(respond(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", render)) == 200
    head = respond(b"HEAD /metrics HTTP/1.1\r\n\r\n", render)
    assert status_of(head) == 200 and head.endswith(b"\r\n\r\n") and b"Content-Length: 4" in head
    assert status_of(respond(b"GET / HTTP/1.1\r\n\r\n", render)) == 404
    assert status_of(respond(b"GET /metricsx HTTP/1.1\r\n\r\n", render)) == 404
    refused = respond(b"POST /metrics HTTP/1.1\r\n\r\n", render)
    assert status_of(refused) == 405 and b"Allow: GET, HEAD\r\n" in refused
    assert status_of(respond(b"garbage\r\n\r\n", render)) == 400


def test_a_failing_render_is_a_500_not_a_crash(caplog):
    def render() -> bytes:
        raise RuntimeError("metric bug")

    assert status_of(respond(b"GET /metrics HTTP/1.1\r\n\r\n", render)) == 500
    assert "rendering the metrics failed" in caplog.text


async def test_server_on_any_free_port_serves_until_stopped():
    server = MetricsServer(lambda: b"up 1\n", 0)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(server.run)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/metrics", url)
        async with httpx.AsyncClient() as client:
            answer = await client.get(url)
            assert answer.status_code == 200 and answer.text == "up 1\n"
            assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
            assert (await client.get(url.removesuffix("metrics") + "other")).status_code == 404
        stream = await trio.open_tcp_stream("127.0.0.1", int(url.split(":")[2].split("/")[0]))
        await stream.send_all(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * MAX_HEAD_BYTES)
        reply = await stream.receive_some(1024)
        assert status_of(reply) == 431
        await stream.aclose()
        server.request_stop()
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", int(url.split(":")[2].split("/")[0]))


async def test_a_port_in_use_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CannotServeMetrics, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            await MetricsServer(lambda: b"", port).run()


# -- a real worker, scraped -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def scrape_until(url: str, done: Callable[[dict[tuple[str, str], float]], bool],
                       timeout_s: float) -> dict[tuple[str, str], float]:
    """Poll a real process's /metrics (wall time) until ``done``; the last parse."""
    samples: dict[tuple[str, str], float] = {}
    async with httpx.AsyncClient(timeout=5) as client:
        with trio.move_on_after(timeout_s):
            while True:
                try:
                    answer = await client.get(url)
                except httpx.TransportError:
                    await trio.sleep(0.2)  # not listening yet
                    continue
                assert answer.status_code == 200
                assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
                samples = parse(answer.text)
                if done(samples):
                    return samples
                await trio.sleep(0.2)
    return samples


async def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM (the graceful path) and wait; SIGKILL if it hangs, then fail."""
    process.send_signal(signal.SIGTERM)
    try:
        return await trio.to_thread.run_sync(process.wait, 60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def succeeded_runs(samples: dict[tuple[str, str], float]) -> float:
    return samples.get((W + "runs_total", 'status="succeeded"'), 0)


async def test_worker_process_exports_fires_runs_and_lateness(etcd_endpoint, etcd_prefix, tmp_path):
    port = free_port()
    ks = Keyspace(etcd_prefix)
    spec = {"name": "tick", "command": "true", "cronExpr": "* * * * * *"}  # every second
    log_path = tmp_path / "worker.log"
    args = [sys.executable, "-m", "worker", "--etcd", etcd_endpoint, "--prefix", etcd_prefix,
            "--db", f"sqlite:///{tmp_path}/runs.db", "--spill-dir", str(tmp_path / "spill"),
            "--id", "metrics-w1", "--metrics-port", str(port), "--shutdown-grace-s", "5"]
    async with open_etcd((etcd_endpoint,), timeout_s=5) as etcd:
        await etcd.put(ks.job("tick"), json.dumps(spec))
        with open(log_path, "wb") as log:
            process = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                       cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            samples = await scrape_until(
                f"http://127.0.0.1:{port}/metrics",
                lambda s: succeeded_runs(s) >= 2 and s.get((W + "sink_written_total", ""), 0) >= 1,
                timeout_s=45)
        finally:
            code = await stop(process)
    logs = log_path.read_text(errors="replace")
    assert succeeded_runs(samples) >= 2, logs[-3000:]
    assert samples[(W + "fires_total", "")] >= 2
    assert samples[(W + "claims_total", 'result="won"')] >= 2
    assert samples[(W + "runs_started_total", "")] >= 2
    assert samples[(W + "fire_lateness_seconds_count", "")] >= 2
    assert samples[(W + "fire_lateness_seconds_bucket", 'le="+Inf"')] == \
        samples[(W + "fire_lateness_seconds_count", "")]
    assert samples[(W + "session_registrations_total", "")] >= 1
    assert samples[(W + "mailbox_depth", 'actor="executor"')] >= 0
    assert samples[(W + "up", "")] == 1
    assert f"metrics at http://127.0.0.1:{port}/metrics" in logs
    assert code == 0, logs[-3000:]


class FakeLocker(Actor[str]):
    def __init__(self, inbox: Inbox[str], **counts: int) -> None:
        super().__init__(inbox)
        self.counts = counts

    def statistics_detail(self) -> LockerStatistics:
        zero = {f.name: 0 for f in dataclasses.fields(LockerStatistics)}
        return LockerStatistics(**{**zero, "out_of_step": False, "quorum_lost": False,
                                   **self.counts})


def test_fires_a_worker_does_not_serve_are_a_result_of_claims_total():
    """Shards on: a fire of a job other workers serve now is not claimed here, and is
    counted as such, beside the other results."""
    metrics = WorkerMetrics()
    _, inbox = open_mailbox[str](4, name="locker")
    metrics.locker.track(FakeLocker(inbox, won=3, not_served=5, no_quorum=1))
    samples = parse(metrics.render())
    assert samples[(W + "claims_total", 'result="not_served"')] == 5
    assert samples[(W + "claims_total", 'result="won"')] == 3
    assert samples[(W + "claims_total", 'result="no_quorum"')] == 1
