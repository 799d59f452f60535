"""The master's Prometheus metrics: names, help texts and labels.

The text format itself lives in ``cluster.metrics``, shared with the worker; this
module only says what the master counts. Everything runs in one trio thread, so
plain numbers need no locks.

Labels are bounded on purpose, so clients cannot blow up the series count (nor the
master's memory): ``route`` is the URL rule (``/api/v1/jobs/<name>``) or
``<unmatched>``, never the raw path; ``method`` is one of ``HTTP_METHODS`` or
``other`` (HTTP lets a client invent methods of any length); ``status`` is a status
the app itself answered.
"""

from __future__ import annotations

from cluster.metrics import CONTENT_TYPE, Counter, Gauge, Registry, escape_label_value

__all__ = ["CONTENT_TYPE", "Counter", "Gauge", "HTTP_METHODS", "Metrics", "PREFIX",
           "escape_label_value", "method_label"]

PREFIX = "scheduler_master_"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
                          "CONNECT", "TRACE"})  # RFC 9110 and 5789; any other is "other"


def method_label(method: str) -> str:
    return method if method in HTTP_METHODS else "other"


class Metrics:
    """Every metric the master exports; one instance per master, shared by its actors."""

    def __init__(self) -> None:
        registry = self._registry = Registry(PREFIX)
        self.up = registry.register(Gauge("up", "1 while the master is serving.", 1))
        self.http_requests = registry.register(Counter(
            "http_requests_total", "HTTP requests answered, by method, route and status.",
            ("method", "route", "status")))
        self.job_saves = registry.register(Counter(
            "job_saves_total", "Jobs written to etcd by save, pause or resume, by result.",
            ("result",)))
        self.etcd_errors = registry.register(Counter(
            "etcd_errors_total", "etcd calls that failed (unreachable, rejected, timed out)."))
        self.store_errors = registry.register(Counter(
            "store_errors_total", "Run-store calls that failed (unreachable, rejected)."))
        self.store_up = registry.register(Gauge(
            "store_up", "1 when the last run-store call succeeded, 0 when it failed."))
        self.workers = registry.register(Gauge("workers", "Live workers registered in etcd."))
        self.retention_deleted = registry.register(Counter(
            "retention_deleted_total", "Run records deleted by the retention policy."))
        self.audit_written = registry.register(Counter(
            "audit_entries_written_total",
            "Audit entries written to etcd, each with its change (one transaction)."))
        self.audit_moved = registry.register(Counter(
            "audit_entries_moved_total",
            "Audit entries copied to the run store and deleted from etcd."))
        self.audit_pending = registry.register(Gauge(
            "audit_entries_pending",
            "Audit entries in etcd not yet moved to the run store, at the last look."))

    def render(self) -> str:
        return self._registry.render()
