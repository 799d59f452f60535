"""Prometheus metrics: the shared text format, the worker's metrics, its /metrics server,
and a real worker process scraped while a job fires every second."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trio

from actors import Actor, Inbox, open_mailbox
from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.metrics import (
    BadBuckets,
    BadLabels,
    BadMetricName,
    Counter,
    DuplicateMetric,
    Gauge,
    Histogram,
    MetricError,
    Registry,
    Sampled,
    format_value,
)
from cluster.store import RunStatus, RunTrigger
from worker.executor import ExecutorStatistics
from worker.metrics import LATENESS_BOUNDS_S, WorkerMetrics
from worker.metrics_http import MAX_HEAD_BYTES, CannotServeMetrics, MetricsServer, respond

ROOT = Path(__file__).resolve().parents[2]
W = "scheduler_worker_"

COMMENT_LINE = re.compile(r"^# (?P<what>HELP|TYPE) (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*) (?P<rest>.+)$")
SAMPLE_LINE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)'
    r'(?:\{(?P<labels>[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*)\})?'
    r' (?P<value>-?[0-9.eE+-]+|NaN|[+-]Inf)$')


def parse(text: str) -> dict[tuple[str, str], float]:
    """Every sample by (name, labels); asserts the text is valid format 0.0.4 line by line:
    each family has HELP then TYPE before its samples, and samples belong to it."""
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


# -- the shared text format -------------------------------------------------------------


def test_registry_renders_help_type_and_escaped_labels():
    registry = Registry("p_")
    hits = registry.register(Counter("hits_total", "Hits,\nby path \\ kind.", ("path",)))
    registry.register(Gauge("temperature", "Degrees.", 21.5))
    hits.inc('a"b\\c\nd')
    hits.inc("plain", by=2)
    text = registry.render()
    assert text.splitlines() == [
        "# HELP p_hits_total Hits,\\nby path \\\\ kind.",
        "# TYPE p_hits_total counter",
        'p_hits_total{path="a\\"b\\\\c\\nd"} 1',
        'p_hits_total{path="plain"} 2',
        "# HELP p_temperature Degrees.",
        "# TYPE p_temperature gauge",
        "p_temperature 21.5",
    ]
    assert parse(text)[("p_hits_total", 'path="plain"')] == 2


def test_unlabelled_counter_shows_zero_and_labelled_one_shows_nothing_until_used():
    registry = Registry()
    registry.register(Counter("plain_total", "x"))
    registry.register(Counter("by_kind_total", "x", ("kind",)))
    assert parse(registry.render()) == {("plain_total", ""): 0}


def test_counters_refuse_wrong_labels_and_going_down():
    counter = Counter("c_total", "x", ("a", "b"))
    with pytest.raises(BadLabels, match=r"takes labels \('a', 'b'\), given values \('1',\)"):
        counter.inc("1")
    with pytest.raises(MetricError, match="cannot go down"):
        counter.inc("1", "2", by=-1)
    counter.inc("1", "2", by=0)
    assert counter.value("1", "2") == 0


def test_bad_names_and_duplicates_are_refused():
    with pytest.raises(BadMetricName, match="metric name: '1abc'"):
        Counter("1abc", "x")
    with pytest.raises(BadMetricName, match="label name: 'a-b'"):
        Counter("ok_total", "x", ("a-b",))
    registry = Registry("p_")
    registry.register(Gauge("g", "x"))
    with pytest.raises(DuplicateMetric, match="'p_g' is already registered"):
        registry.register(Counter("g", "y"))


def test_values_are_formatted_as_the_format_spells_them():
    assert [format_value(v) for v in (3, 3.0, 0.25, 1e-3, math.inf, -math.inf, math.nan)] == [
        "3", "3", "0.25", "0.001", "+Inf", "-Inf", "NaN"]


def test_histogram_buckets_are_inclusive_and_cumulative():
    histogram = Histogram("lat_seconds", "x", (0.001, 0.01, 1.0))
    for value in (-0.5, 0.0, 0.001, 0.0011, 0.01, 0.5, 1.0, 1.0001, 99):
        histogram.observe(value)
    assert histogram.bucket_counts() == (3, 5, 7, 9)  # le=0.001, 0.01, 1, +Inf
    registry = Registry()
    registry.register(histogram)
    samples = parse(registry.render())
    assert samples[("lat_seconds_bucket", 'le="0.001"')] == 3
    assert samples[("lat_seconds_bucket", 'le="1"')] == 7
    assert samples[("lat_seconds_bucket", 'le="+Inf"')] == 9
    assert samples[("lat_seconds_count", "")] == 9
    assert samples[("lat_seconds_sum", "")] == pytest.approx(101.0122)


def test_an_empty_histogram_renders_zeros():
    registry = Registry()
    registry.register(Histogram("h", "x", (1, 2)))
    assert parse(registry.render()) == {
        ("h_bucket", 'le="1"'): 0, ("h_bucket", 'le="2"'): 0, ("h_bucket", 'le="+Inf"'): 0,
        ("h_sum", ""): 0, ("h_count", ""): 0}


def test_histogram_refuses_nan():
    histogram = Histogram("h", "x", (1,))
    with pytest.raises(MetricError, match="cannot observe NaN"):
        histogram.observe(math.nan)
    assert histogram.count == 0


@pytest.mark.parametrize("bounds", [(), (1, 1), (2, 1), (1, math.inf), (math.nan,)])
def test_histogram_bounds_must_be_finite_and_increasing(bounds):
    with pytest.raises(BadBuckets, match="strictly increasing"):
        Histogram("h", "x", bounds)


def test_sampled_metrics_are_read_at_render_time():
    state = {"n": 1}
    registry = Registry()
    registry.register(Sampled("n", "x", "gauge", lambda: {("a",): state["n"]}, ("kind",)))
    registry.register(Sampled("none", "x", "counter", lambda: {}))
    assert parse(registry.render()) == {("n", 'kind="a"'): 1}
    state["n"] = 5
    assert parse(registry.render()) == {("n", 'kind="a"'): 5}


def test_sampled_values_with_wrong_labels_fail_loudly():
    registry = Registry()
    registry.register(Sampled("n", "x", "gauge", lambda: {("a", "b"): 1}, ("kind",)))
    with pytest.raises(BadLabels):
        registry.render()


# -- the worker's metrics ------------------------------------------------------------------


@dataclass(frozen=True)
class FakeSchedulerStatistics:
    jobs: int
    fires: int
    misfires: int
    retries_pending: int
    outbox: int
    firing: bool


class FakeScheduler(Actor[str]):
    def __init__(self, inbox: Inbox[str], fires: int, jobs: int) -> None:
        super().__init__(inbox)
        self.fires, self.jobs = fires, jobs

    def statistics_detail(self) -> FakeSchedulerStatistics:
        return FakeSchedulerStatistics(self.jobs, self.fires, 0, 0, 0, True)


def test_worker_counts_add_up_across_restarts_and_gauges_do_not():
    metrics = WorkerMetrics()
    before = parse(metrics.render())
    assert (W + "fires_total", "") not in before  # nothing tracked yet: no sample
    assert before[(W + "runs_total", 'status="succeeded"')] == 0
    address, inbox = open_mailbox[str](4, name="scheduler")
    metrics.track(FakeScheduler(inbox, fires=5, jobs=3))
    metrics.track(FakeScheduler(inbox, fires=2, jobs=4))  # rebuilt after a crash
    address.send_nowait("queued")
    samples = parse(metrics.render())
    assert samples[(W + "fires_total", "")] == 7
    assert samples[(W + "jobs", "")] == 4
    assert samples[(W + "actor_restarts_total", 'actor="scheduler"')] == 1
    assert samples[(W + "mailbox_depth", 'actor="scheduler"')] == 1
    assert samples[(W + "mailbox_capacity", 'actor="scheduler"')] == 4


class FakeExecutor(Actor[str]):
    def __init__(self, inbox: Inbox[str], not_allowed: int, unknown: int) -> None:
        super().__init__(inbox)
        self.not_allowed, self.unknown = not_allowed, unknown

    def statistics_detail(self) -> ExecutorStatistics:
        return ExecutorStatistics(0, 0, 0, 0, 0, 0, 0, user_not_allowed=self.not_allowed,
                                  unknown_user=self.unknown)


def test_runs_refused_for_their_user_are_counted_by_reason_across_restarts():
    metrics = WorkerMetrics()
    _, inbox = open_mailbox[str](4, name="executor")
    metrics.track(FakeExecutor(inbox, not_allowed=2, unknown=0))
    assert parse(metrics.render())[(W + "runs_refused_total", 'reason="unknown_user"')] == 0
    metrics.track(FakeExecutor(inbox, not_allowed=1, unknown=3))  # rebuilt after a crash
    samples = parse(metrics.render())
    assert samples[(W + "runs_refused_total", 'reason="user_not_allowed"')] == 3
    assert samples[(W + "runs_refused_total", 'reason="unknown_user"')] == 3


def test_lateness_is_observed_for_scheduled_fires_only():
    metrics = WorkerMetrics()
    metrics.run_started(RunTrigger.SCHEDULE, planned_ms=10_000, start_ms=10_004)
    metrics.run_started(RunTrigger.SCHEDULE, planned_ms=10_000, start_ms=13_000)
    metrics.run_started(RunTrigger.RETRY, planned_ms=10_000, start_ms=70_000)
    metrics.run_started(RunTrigger.MANUAL, planned_ms=10_000, start_ms=10_001)
    metrics.run_finished(RunStatus.SUCCEEDED)
    metrics.run_finished(RunStatus.TIMEOUT)
    samples = parse(metrics.render())
    assert LATENESS_BOUNDS_S[0] == 0.001 and LATENESS_BOUNDS_S[-1] == 10
    assert samples[(W + "fire_lateness_seconds_count", "")] == 2
    assert samples[(W + "fire_lateness_seconds_bucket", 'le="0.005"')] == 1
    assert samples[(W + "fire_lateness_seconds_bucket", 'le="2.5"')] == 1
    assert samples[(W + "fire_lateness_seconds_bucket", 'le="5"')] == 2
    assert samples[(W + "fire_lateness_seconds_sum", "")] == pytest.approx(3.004)
    assert samples[(W + "runs_total", 'status="succeeded"')] == 1
    assert samples[(W + "runs_total", 'status="timeout"')] == 1


# -- the /metrics server ---------------------------------------------------------------------


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_respond_routes_and_methods():
    def render() -> str:
        return "x 1\n"

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
    def render() -> str:
        raise RuntimeError("metric bug")

    assert status_of(respond(b"GET /metrics HTTP/1.1\r\n\r\n", render)) == 500
    assert "rendering the metrics failed" in caplog.text


async def test_server_on_any_free_port_serves_until_stopped():
    server = MetricsServer(lambda: "up 1\n", 0)
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
            await MetricsServer(lambda: "", port).run()


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
