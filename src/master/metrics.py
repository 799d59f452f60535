"""The master's Prometheus metrics, rendered by hand in text format 0.0.4.

Why by hand: a handful of counters and gauges does not justify a dependency, and the
format is four rules (HELP, TYPE, ``name{labels} value``, escaped label values).
Everything runs in one trio thread, so plain integers need no locks.

Labels are bounded on purpose: ``route`` is the URL rule (``/api/v1/jobs/<name>``),
never the raw path, so clients cannot blow up the series count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Counter", "Gauge", "Metrics", "escape_label_value"]

PREFIX = "scheduler_master_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    if not names:
        return ""
    pairs = ",".join(f'{n}="{escape_label_value(v)}"' for n, v in zip(names, values))
    return "{" + pairs + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass
class Counter:
    """A monotonically increasing count per label set."""

    name: str
    help: str
    label_names: tuple[str, ...] = ()
    _values: dict[tuple[str, ...], int] = field(default_factory=dict)

    def inc(self, *label_values: str, by: int = 1) -> None:
        assert len(label_values) == len(self.label_names), (self.name, label_values)
        self._values[label_values] = self._values.get(label_values, 0) + by

    def value(self, *label_values: str) -> int:
        return self._values.get(label_values, 0)

    def render(self) -> Iterable[str]:
        yield f"# HELP {PREFIX}{self.name} {self.help}"
        yield f"# TYPE {PREFIX}{self.name} counter"
        if not self.label_names and not self._values:
            yield f"{PREFIX}{self.name} 0"
        for values, count in sorted(self._values.items()):
            yield f"{PREFIX}{self.name}{_labels(self.label_names, values)} {count}"


@dataclass
class Gauge:
    """A value that goes up and down (no labels: the master's gauges are single)."""

    name: str
    help: str
    value: float = 0

    def set(self, value: float) -> None:
        self.value = value

    def render(self) -> Iterable[str]:
        yield f"# HELP {PREFIX}{self.name} {self.help}"
        yield f"# TYPE {PREFIX}{self.name} gauge"
        yield f"{PREFIX}{self.name} {_number(self.value)}"


class Metrics:
    """Every metric the master exports; one instance per master, shared by its actors."""

    def __init__(self) -> None:
        self.up = Gauge("up", "1 while the master is serving.", 1)
        self.http_requests = Counter(
            "http_requests_total", "HTTP requests answered, by method, route and status.",
            ("method", "route", "status"))
        self.job_saves = Counter(
            "job_saves_total", "Jobs written to etcd by save, pause or resume, by result.",
            ("result",))
        self.etcd_errors = Counter(
            "etcd_errors_total", "etcd calls that failed (unreachable, rejected, timed out).")
        self.store_errors = Counter(
            "store_errors_total", "Run-store calls that failed (unreachable, rejected).")
        self.store_up = Gauge(
            "store_up", "1 when the last run-store call succeeded, 0 when it failed.")
        self.workers = Gauge("workers", "Live workers registered in etcd.")
        self.retention_deleted = Counter(
            "retention_deleted_total", "Run records deleted by the retention policy.")

    def _all(self) -> tuple[Counter | Gauge, ...]:
        return (self.up, self.http_requests, self.job_saves, self.etcd_errors,
                self.store_errors, self.store_up, self.workers, self.retention_deleted)

    def render(self) -> str:
        lines = [line for metric in self._all() for line in metric.render()]
        return "\n".join(lines) + "\n"
