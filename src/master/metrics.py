"""The master's Prometheus metrics (``scheduler_master_*``): prometheus_client counters
and gauges, incremented where the event happens.

Unlike the worker's (read from actors' statistics at scrape time), these are events
of request handlers and periodic tasks, none on a hot path: a plain ``Counter.inc``
(which takes a lock) costs nothing next to an HTTP request or an etcd call. Each
master has a registry of its own (``cluster.metrics.new_registry``), so that several
masters in one process (tests) keep their counts apart.

Labels are bounded on purpose, so clients cannot blow up the series count (nor the
master's memory): ``route`` is the URL rule (``/api/v1/jobs/<name>``) or
``<unmatched>``, never the raw path; ``method`` is one of ``HTTP_METHODS`` or
``other`` (HTTP lets a client invent methods of any length); ``status`` is a status
the app itself answered.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from cluster.metrics import CONTENT_TYPE, new_registry, render

__all__ = ["CONTENT_TYPE", "HTTP_METHODS", "Metrics", "PREFIX", "method_label"]

PREFIX = "scheduler_master_"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
                          "CONNECT", "TRACE"})  # RFC 9110 and 5789; any other is "other"


def method_label(method: str) -> str:
    return method if method in HTTP_METHODS else "other"


class Metrics:
    """Every metric the master exports; one instance per master, shared by its actors."""

    def __init__(self) -> None:
        registry = self.registry = new_registry()
        self.up = Gauge(PREFIX + "up", "1 while the master is serving.", registry=registry)
        self.up.set(1)
        self.http_requests = Counter(
            PREFIX + "http_requests_total",
            "HTTP requests answered, by method, route and status.",
            ("method", "route", "status"), registry=registry)
        self.job_saves = Counter(
            PREFIX + "job_saves_total",
            "Jobs written to etcd by save, pause or resume, by result.",
            ("result",), registry=registry)
        self.etcd_errors = Counter(
            PREFIX + "etcd_errors_total",
            "etcd calls that failed (unreachable, rejected, timed out).", registry=registry)
        self.store_errors = Counter(
            PREFIX + "store_errors_total",
            "Run-store calls that failed (unreachable, rejected).", registry=registry)
        self.store_up = Gauge(
            PREFIX + "store_up", "1 when the last run-store call succeeded, 0 when it failed.",
            registry=registry)
        self.workers = Gauge(PREFIX + "workers", "Live workers registered in etcd.",
                             registry=registry)
        self.worker_clock_skew_max = Gauge(
            PREFIX + "worker_clock_skew_max_seconds",
            "Largest absolute difference between a live worker's clock and the master's, "
            "at its last publication.", registry=registry)
        self.etcd_no_quorum = Gauge(
            PREFIX + "etcd_no_quorum", "1 while etcd's members answer but none has a leader: "
            "nothing is written, /healthz and /api/v1/workers answer 503.", registry=registry)
        self.workers_clock_skewed = Gauge(
            PREFIX + "workers_clock_skewed",
            "Live workers whose clock is further than --max-clock-skew-s from the master's.",
            registry=registry)
        self.retention_deleted = Counter(
            PREFIX + "retention_deleted_total",
            "Run records deleted by the retention policy.", registry=registry)
        self.audit_written = Counter(
            PREFIX + "audit_entries_written_total",
            "Audit entries written to etcd, each with its change (one transaction).",
            registry=registry)
        self.audit_moved = Counter(
            PREFIX + "audit_entries_moved_total",
            "Audit entries copied to the run store and deleted from etcd.", registry=registry)
        self.audit_pending = Gauge(
            PREFIX + "audit_entries_pending",
            "Audit entries in etcd not yet moved to the run store, at the last look.",
            registry=registry)

        self.jobs_unschedulable = Gauge(
            PREFIX + "jobs_unschedulable",
            "Jobs no live worker can run (their selector matches none), as announced "
            "(master.schedulable_watch).", registry=registry)
        self.schedulable_changes = Counter(
            PREFIX + "schedulable_changes_total",
            "Jobs that became unschedulable (no live worker matches their selector) or "
            "schedulable again, by the state they went to.", ("to",), registry=registry)

        self.stats_query = Histogram(
            PREFIX + "stats_query_seconds",
            "Time the run store took to answer GET /api/v1/stats (rollup refresh "
            "included), by window.", ("window",), registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0))
        self.job_list_reads = Counter(
            PREFIX + "job_list_reads_total",
            "Jobs lists (the list, its pages, the dashboard's counts) by where the jobs "
            "came from: the JobCache, or etcd (the cache not synced or behind).",
            ("source",), registry=registry)
        self.events_clients = Gauge(
            PREFIX + "events_clients",
            "Streams of GET /api/v1/events connected now.", registry=registry)
        self.events_sent = Counter(
            PREFIX + "events_sent_total",
            "Server-sent events written to the streams of GET /api/v1/events "
            "(heartbeats not counted).", registry=registry)
        self.output_streams = Gauge(
            PREFIX + "output_streams",
            "Streams of GET /api/v1/runs/<runId>/output (live output) open now.",
            registry=registry)
        self.events_dropped = Counter(
            PREFIX + "events_clients_dropped_total",
            "Event streams ended because their client read too slowly (its queue filled).",
            registry=registry)

    def render(self) -> bytes:
        return render(self.registry)

    def value(self, name: str, **labels: str) -> float | None:
        """One sample's value by its exported name without the prefix (None: no such
        sample); what tests and diagnostics read."""
        return self.registry.get_sample_value(PREFIX + name, labels)
