"""Prometheus text exposition (format 0.0.4), by hand, for the master and the worker.

Why by hand: a few counters, gauges and one histogram do not justify a dependency, and
the format is four rules (``# HELP``, ``# TYPE``, ``name{labels} value``, escaped label
values). Everything runs in one trio thread, so plain numbers need no locks.

What a process exports is a ``Registry`` (a name prefix, metrics in a fixed order)::

    registry = Registry("scheduler_worker_")
    fires = registry.register(Counter("fires_total", "Fires handed to the Locker."))
    depth = registry.register(Sampled("mailbox_depth", "Queued messages.", "gauge",
                                      lambda: {("locker",): 3}, ("actor",)))
    fires.inc()
    text = registry.render()   # serve with CONTENT_TYPE

Kinds: ``Counter`` (owned, labelled, only goes up), ``Gauge`` (owned, one value),
``Histogram`` (owned, fixed buckets, one series: ``observe`` is a bisect over a dozen
bounds, cheap enough for a hot path) and ``Sampled`` (a counter or gauge whose values
are read from a callable at render time: for counts an object already keeps).

Labels stay bounded on purpose: label values come from small fixed sets (a route
rule, a status), never from user input, so nobody can blow up the series count.

Errors (all ``ValueError``: a metric is defined wrongly, or used with wrong labels)::

    MetricError
    ├── BadMetricName    a metric or label name outside Prometheus' alphabet
    ├── BadLabels        label values that do not match the metric's label names
    ├── BadBuckets       histogram bounds not finite and strictly increasing
    └── DuplicateMetric  two metrics of one name in a registry
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

__all__ = [
    "CONTENT_TYPE", "BadBuckets", "BadLabels", "BadMetricName", "Counter",
    "DuplicateMetric", "Gauge", "Histogram", "Metric", "MetricError", "Registry",
    "Sample", "Sampled", "escape_help", "escape_label_value", "format_value",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LabelValues = tuple[str, ...]
Kind = Literal["counter", "gauge", "histogram"]

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class MetricError(ValueError):
    """A metric defined or used wrongly: a bug in the exporting code."""


class BadMetricName(MetricError):
    def __init__(self, what: str, name: str) -> None:
        self.name = name
        super().__init__(f"invalid Prometheus {what} name: {name!r}")


class BadLabels(MetricError):
    def __init__(self, metric: str, label_names: LabelValues, values: LabelValues) -> None:
        self.metric, self.label_names, self.values = metric, label_names, values
        super().__init__(f"metric {metric!r} takes labels {label_names}, given values {values}")


class BadBuckets(MetricError):
    def __init__(self, metric: str, bounds: Sequence[float]) -> None:
        self.metric, self.bounds = metric, tuple(bounds)
        super().__init__(f"histogram {metric!r}: bucket bounds must be finite, non-empty "
                         f"and strictly increasing, not {self.bounds}")


class DuplicateMetric(MetricError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"metric {name!r} is already registered")


# -- the text format -------------------------------------------------------------------


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """Integers without a decimal point; the format's spellings of infinities and NaN."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass(frozen=True, slots=True)
class Sample:
    """One line of a metric family: ``<name><suffix>{labels} value``."""

    suffix: str  # "" or, for histograms, "_bucket" / "_sum" / "_count"
    labels: tuple[tuple[str, str], ...]
    value: float

    def render(self, name: str) -> str:
        if not self.labels:
            return f"{name}{self.suffix} {format_value(self.value)}"
        pairs = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in self.labels)
        return f"{name}{self.suffix}{{{pairs}}} {format_value(self.value)}"


class Metric(Protocol):
    """What a Registry renders: a named, documented family of samples."""

    @property
    def name(self) -> str: ...

    @property
    def help(self) -> str: ...

    @property
    def kind(self) -> Kind: ...

    def samples(self) -> Iterable[Sample]: ...


def _check_names(name: str, label_names: LabelValues) -> None:
    if not _METRIC_NAME.match(name):
        raise BadMetricName("metric", name)
    for label in label_names:
        if not _LABEL_NAME.match(label) or label.startswith("__"):
            raise BadMetricName("label", label)


def _labelled(metric: str, names: LabelValues, values: LabelValues) -> tuple[tuple[str, str], ...]:
    if len(values) != len(names):
        raise BadLabels(metric, names, values)
    return tuple(zip(names, values))


# -- metric kinds --------------------------------------------------------------------


class Counter:
    """A count per label set that only goes up; an unlabelled one always shows (as 0)."""

    kind: Kind = "counter"

    def __init__(self, name: str, help: str, label_names: LabelValues = ()) -> None:
        _check_names(name, label_names)
        self.name, self.help, self.label_names = name, help, label_names
        self._values: dict[LabelValues, float] = {}

    def inc(self, *label_values: str, by: float = 1) -> None:
        """Add ``by`` (>= 0; 0 makes the series show before its first event)."""
        if len(label_values) != len(self.label_names):
            raise BadLabels(self.name, self.label_names, label_values)
        if by < 0:
            raise MetricError(f"counter {self.name!r} cannot go down (inc by {by})")
        self._values[label_values] = self._values.get(label_values, 0) + by

    def value(self, *label_values: str) -> float:
        return self._values.get(label_values, 0)

    def samples(self) -> Iterable[Sample]:
        if not self.label_names and not self._values:
            yield Sample("", (), 0)
        for values, count in sorted(self._values.items()):
            yield Sample("", tuple(zip(self.label_names, values)), count)


class Gauge:
    """One value that goes up and down (no labels: use Sampled for labelled gauges)."""

    kind: Kind = "gauge"

    def __init__(self, name: str, help: str, value: float = 0) -> None:
        _check_names(name, ())
        self.name, self.help, self.value = name, help, value

    def set(self, value: float) -> None:
        self.value = value

    def inc(self, by: float = 1) -> None:
        self.value += by

    def dec(self, by: float = 1) -> None:
        self.value -= by

    def samples(self) -> Iterable[Sample]:
        yield Sample("", (), self.value)


class Histogram:
    """Observations counted into fixed buckets (one series, no labels).

    ``bounds`` are the buckets' inclusive upper limits (``le``); ``+Inf`` is implicit.
    Counts are kept per bucket and made cumulative only when rendered, so ``observe``
    is one bisect and three additions.
    """

    kind: Kind = "histogram"

    def __init__(self, name: str, help: str, bounds: Sequence[float]) -> None:
        _check_names(name, ())
        ordered = all(a < b for a, b in zip(bounds, bounds[1:]))
        if not bounds or not ordered or not all(math.isfinite(b) for b in bounds):
            raise BadBuckets(name, bounds)
        self.name, self.help = name, help
        self.bounds = tuple(float(b) for b in bounds)
        self._counts = [0] * (len(self.bounds) + 1)  # the last: above every bound
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        if value != value:  # NaN: it would sort into the first bucket and poison the sum
            raise MetricError(f"histogram {self.name!r} cannot observe NaN")
        self._counts[bisect_left(self.bounds, value)] += 1  # value <= bound: that bucket
        self.sum += value
        self.count += 1

    def bucket_counts(self) -> tuple[int, ...]:
        """Cumulative counts, one per bound then +Inf, as rendered."""
        total, out = 0, []
        for n in self._counts:
            total += n
            out.append(total)
        return tuple(out)

    def samples(self) -> Iterable[Sample]:
        cumulative = self.bucket_counts()
        for bound, count in zip(self.bounds, cumulative):
            yield Sample("_bucket", (("le", format_value(bound)),), count)
        yield Sample("_bucket", (("le", "+Inf"),), cumulative[-1])
        yield Sample("_sum", (), self.sum)
        yield Sample("_count", (), self.count)


class Sampled:
    """A counter or gauge whose values are read at render time from ``read``.

    ``read`` returns label values -> value; an empty mapping renders no sample (e.g.
    the thing measured is not running yet). For counts an object already keeps, so
    the hot path does no extra work: the cost is paid per scrape.
    """

    def __init__(self, name: str, help: str, kind: Literal["counter", "gauge"],
                 read: Callable[[], Mapping[LabelValues, float]],
                 label_names: LabelValues = ()) -> None:
        _check_names(name, label_names)
        self.name, self.help, self.kind, self.label_names = name, help, kind, label_names
        self._read = read

    def samples(self) -> Iterable[Sample]:
        for values, value in sorted(self._read().items()):
            yield Sample("", _labelled(self.name, self.label_names, values), value)


M = TypeVar("M", bound=Metric)


class Registry:
    """Metrics in registration order, rendered with one name prefix."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self._metrics: dict[str, Metric] = {}

    def register(self, metric: M) -> M:
        """Add ``metric`` and return it, for ``self.x = registry.register(Counter(...))``."""
        if metric.name in self._metrics:
            raise DuplicateMetric(self.prefix + metric.name)
        self._metrics[metric.name] = metric
        return metric

    def render(self) -> str:
        lines: list[str] = []
        for metric in self._metrics.values():
            name = self.prefix + metric.name
            lines.append(f"# HELP {name} {escape_help(metric.help)}")
            lines.append(f"# TYPE {name} {metric.kind}")
            lines.extend(sample.render(name) for sample in metric.samples())
        return "\n".join(lines) + "\n"
