"""The pure parts of ``python -m benchmarks.scale --fleet`` (issue 14, target 4): reading
etcd's /metrics text, the per-fire arithmetic with the quiet window's background taken
off, duplicates and misses, and the ``--shards S:R`` argument. No server: the measured part runs
by hand (BENCHMARKS.md)."""

from __future__ import annotations

import argparse

import pytest

pytest.importorskip("psutil", reason="the bench extra (benchmarks._workers)")

from benchmarks import _fleet_counts, scale  # noqa: E402
from benchmarks._etcd_counts import EtcdCounts, MetricsMissing, PerFire  # noqa: E402
from benchmarks._stats import Observed, summarize  # noqa: E402
from cluster.shard_settings import ShardSettings  # noqa: E402


def etcd_metrics(*, txn: int, keepalive: int, range_: int, writes: int, events: int,
                 responses: int) -> str:
    """A cut of etcd 3.4's /metrics, with the families and labels it really has."""
    return f"""\
# HELP etcd_debugging_mvcc_events_total Total number of events sent by this member.
# TYPE etcd_debugging_mvcc_events_total counter
etcd_debugging_mvcc_events_total {events}
# HELP etcd_server_proposals_committed_total The total number of consensus proposals committed.
# TYPE etcd_server_proposals_committed_total gauge
etcd_server_proposals_committed_total {writes}
# HELP grpc_server_msg_received_total Total number of RPC stream messages received on the server.
# TYPE grpc_server_msg_received_total counter
grpc_server_msg_received_total{{grpc_method="Txn",grpc_service="etcdserverpb.KV",grpc_type="unary"}} {txn}
grpc_server_msg_received_total{{grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"}} {range_}
grpc_server_msg_received_total{{grpc_method="LeaseKeepAlive",grpc_service="etcdserverpb.Lease",grpc_type="bidi_stream"}} {keepalive}
grpc_server_msg_received_total{{grpc_method="Watch",grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"}} 3
grpc_server_msg_received_total{{grpc_method="Watch",grpc_service="grpc.health.v1.Health",grpc_type="server_stream"}} 0
# HELP grpc_server_msg_sent_total Total number of gRPC stream messages sent by the server.
# TYPE grpc_server_msg_sent_total counter
grpc_server_msg_sent_total{{grpc_method="Txn",grpc_service="etcdserverpb.KV",grpc_type="unary"}} {txn}
grpc_server_msg_sent_total{{grpc_method="Watch",grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"}} {responses}
"""


def test_requests_are_every_message_received_writes_the_proposals_events_those_sent():
    counts = EtcdCounts.parse(etcd_metrics(txn=40, keepalive=5, range_=2, writes=37,
                                           events=20, responses=4))
    assert counts.requests == 40 + 5 + 2 + 3
    assert counts.by_method == {"Txn": 40, "Range": 2, "LeaseKeepAlive": 5, "Watch": 3}
    assert (counts.writes, counts.watch_events, counts.watch_responses) == (37, 20, 4)


def test_a_metrics_text_without_the_needed_counters_is_named_not_read_as_zero():
    text = etcd_metrics(txn=1, keepalive=0, range_=0, writes=1, events=0, responses=0)
    without = "\n".join(line for line in text.splitlines() if "mvcc_events" not in line)
    with pytest.raises(MetricsMissing, match="etcd_debugging_mvcc_events_total"):
        EtcdCounts.parse(without)


def test_per_fire_takes_the_quiet_rate_off_over_the_window_then_divides_by_fires():
    def counts(requests, writes, events, responses, txn):
        return EtcdCounts(requests, writes, events, responses, {"Txn": txn})

    before = counts(1000, 900, 500, 100, 800)
    after = counts(1000 + 470, 900 + 430, 500 + 210, 100 + 30, 800 + 400)
    window = after - before
    assert window == counts(470, 430, 210, 30, 400)
    # 10 s quiet: 6 requests, 0.5 writes, 1 event per second
    per = PerFire(window, 20.0, 200, counts(60, 5, 10, 10, 0), 10.0)
    assert per.background_per_s == counts(6, 0.5, 1, 1, 0)
    assert per.gross.requests == pytest.approx(2.35)
    assert per.net.requests == pytest.approx((470 - 120) / 200)
    assert per.net.writes == pytest.approx((430 - 10) / 200)
    assert per.net.watch_events == pytest.approx((210 - 20) / 200)
    assert per.net.by_method == {"Txn": pytest.approx(2.0)}
    assert per.to_json()["per_fire_net"]["writes"] == 2.1


def test_fires_are_judged_as_every_benchmark_judges_them_duplicates_and_misses():
    """The fleet's runs go through ``_stats.summarize``, as the latency runs do: runs
    beyond the first of each planned fire are duplicates, a due fire with none a miss,
    a run planned outside the window not counted."""
    def run(job: str, planned_ms: int, node: str = "w0") -> Observed:
        return Observed(job, planned_ms, planned_ms + 5, None, node)

    runs = [run("a", 1000), run("a", 2000), run("a", 1000, "w1"), run("b", 1000),
            run("a", 1000), run("a", 9000)]
    due = [(1000, "a"), (2000, "a"), (1000, "b"), (2000, "b")]
    result = summarize("W=2", runs, due, start_ms=1000, end_ms=3000, cpu_s=None)
    assert (result.runs, result.duplicates, result.misses) == (5, 2, 1)
    assert result.per_node == {"w0": 4, "w1": 1}


def test_gauges_are_read_from_the_worker_text_and_absent_is_none():
    text = ("# TYPE scheduler_worker_jobs gauge\nscheduler_worker_jobs 100000.0\n"
            "scheduler_worker_jobs_total_x 3\n")
    assert _fleet_counts.gauge(text, "scheduler_worker_jobs") == 100_000
    assert _fleet_counts.gauge(text, "scheduler_worker_jobs_planned") is None


def test_shards_argument_is_s_colon_r_and_a_bad_one_is_one_line():
    assert _fleet_counts.parse_shards("256:2") == ShardSettings(256, 2)
    for bad, why in (("256", "expected S:R"), ("x:2", "expected S:R"),
                     ("0:2", "invalid slot count")):
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            _fleet_counts.parse_shards(bad)


def test_fleet_mode_refuses_impossible_sizes_before_starting_anything(capsys):
    for argv in (["--fleet", "2,x"], ["--fleet", "0"], ["--fleet", "2", "--jobs", "5"]):
        with pytest.raises(SystemExit) as exited:
            scale.main(argv)
        assert exited.value.code == 2
    assert "--fleet" in capsys.readouterr().err


def test_the_table_shows_net_and_gross_per_fire_and_n_a_without_the_planned_gauge():
    per = PerFire(EtcdCounts(470, 430, 210, 30), 20.0, 200, EtcdCounts(60, 5, 10, 10), 10.0)
    result = _fleet_counts.FleetResult(
        workers=2, jobs=1000, firing=10, shards="off", counts=per, due=200, run=201,
        duplicates=1, load_s=1.0, rss_mb=[100.0, 120.0], plan_table=[1000.0, 1000.0],
        planned=[None, None], cpu_s=1.0)
    text = _fleet_counts.table([result])
    row = next(line for line in text.splitlines() if line.startswith("| 2 |"))
    assert "| 200 / 200 | 1 | 0 |" in row
    assert "1.75 (2.35)" in row and "2.10 (2.15)" in row and "0.95 (1.05)" in row
    assert "| 110 / 120 |" in row and row.endswith("| n/a | off |")


def test_peak_rss_is_vmhwm_of_proc_status_in_kb_and_a_gone_process_is_none():
    status = ("Name:\tpython\nVmPeak:\t  900000 kB\nVmHWM:\t  204800 kB\n"
              "VmRSS:\t  102400 kB\n")
    assert _fleet_counts.status_kb(status, "VmHWM") == 204_800
    assert _fleet_counts.status_kb(status, "VmRSS") == 102_400
    assert _fleet_counts.status_kb(status, "VmSwap") is None
    import os
    assert _fleet_counts.peak_rss_mb(os.getpid()) > 1
    assert _fleet_counts.peak_rss_mb(2**22 + 7) is None  # above pid_max's default


def test_missed_fires_are_listed_by_job_and_planned_time_in_time_order():
    due = [(2000, "b"), (1000, "a"), (1000, "b"), (2000, "a")]
    ran = [("a", 1000), ("b", 2000), ("a", 1000)]
    assert _fleet_counts.missed_fires(due, ran) == [("b", 1000), ("a", 2000)]
    assert _fleet_counts.missed_fires(due, [(j, t) for t, j in due]) == []


def record(run_id: str, job: str = "bench-0001", status: str = "succeeded"):
    from cluster.store import RunRecord
    return RunRecord.from_json({
        "runId": run_id, "jobName": job, "command": "true", "worker": "w0",
        "status": status, "trigger": "schedule", "attempt": 1, "planTime": 1000,
        "scheduleTime": 990, "startTime": 1001, "endTime": 1002, "exitCode": 0,
        "output": "", "err": "", "outputTruncated": False})


def test_spilled_records_are_read_from_each_workers_spill_file_and_counted_once(tmp_path):
    import json
    one, two, kept = record("r1"), record("r2"), record("r3")
    (tmp_path / "w0").mkdir()
    (tmp_path / "w1").mkdir()
    (tmp_path / "w0" / "spill-w0.jsonl").write_text(
        "\n".join(json.dumps(r.to_json()) for r in (one, two)) + "\n{torn")
    (tmp_path / "w1" / "spill-w1.jsonl").write_text(json.dumps(kept.to_json()) + "\n")
    (tmp_path / "w1" / "spill-w1.rejected.jsonl").write_text(
        json.dumps(record("r9").to_json()) + "\n")
    spilled = _fleet_counts.spilled_records(tmp_path)
    assert sorted(r.run_id for r in spilled) == ["r1", "r2", "r3"]
    merged = _fleet_counts.merge_records([one], spilled)  # r1 was replayed before the stop
    assert sorted(r.run_id for r in merged) == ["r1", "r2", "r3"]


def test_plans_converge_when_they_sum_to_r_times_the_jobs_within_a_percent():
    assert _fleet_counts.converged([50_000.0, 50_300.0, 49_900.0, 50_000.0], 200_000)
    assert not _fleet_counts.converged([100_000.0, 50_000.0, 50_000.0, 50_000.0], 200_000)
    assert not _fleet_counts.converged([100_000.0, None], 200_000)


def test_the_table_shows_peak_rss_how_the_plans_converged_and_lists_missed_fires():
    per = PerFire(EtcdCounts(470, 430, 210, 30), 20.0, 200, EtcdCounts(60, 5, 10, 10), 10.0)
    result = _fleet_counts.FleetResult(
        workers=4, jobs=1000, firing=10, shards="256:2", counts=per, due=200, run=198,
        duplicates=0, missed=2, load_s=1.0, rss_mb=[100.0, 120.0, 90.0, 90.0],
        plan_table=[500.0] * 4, planned=[500.0] * 4, cpu_s=1.0,
        peak_rss_mb=[150.0, 170.0, 150.0, 150.0], converge="sum", converge_s=12.4,
        missed_list=[("bench-0003", 1_700_000_000_150), ("bench-0007", 1_700_000_000_350)],
        spilled=3)
    text = _fleet_counts.table([result])
    row = next(line for line in text.splitlines() if line.startswith("| 4 |"))
    assert "| 198 / 200 | 0 | 2 |" in row
    assert "| 100 / 120 | 155 / 170 |" in row and row.endswith("| sum (12 s) |")
    assert "W=4: bench-0003 at 1700000000150, bench-0007 at 1700000000350" in text
    assert "spill files: W=4: 3" in text
    data = result.to_json()
    assert data["missed_fires"][0] == {"job": "bench-0003", "planned_ms": 1_700_000_000_150}
    assert data["peak_rss_mb"] == [150.0, 170.0, 150.0, 150.0] and data["converge"] == "sum"
