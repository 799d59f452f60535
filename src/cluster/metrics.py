"""Prometheus metrics by ``prometheus_client``: what the master and the worker share.

- ``new_registry()``: each master and each worker has a ``CollectorRegistry`` of its
  own, never the library's global default, so that several of them in one process (as
  in the tests) keep their counts apart.
- ``render(registry)`` and ``CONTENT_TYPE``: the body and the header of a scrape.
- ``BucketCounter``: a histogram counted with plain integers, for a hot path (one
  per fire): an actor counts into it, puts its ``BucketCounts`` in its statistics,
  and a collector turns them into a family with ``histogram_family``. Why not the
  library's ``Histogram``: its ``observe`` takes a lock per call, and every worker
  count is read from the actors' statistics at scrape time anyway.

Labels stay bounded on purpose: their values come from small fixed sets (a route
rule, a status, an actor), never from user input, so nobody can blow up the series.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import HistogramMetricFamily

__all__ = ["CONTENT_TYPE", "BadBuckets", "BucketCounter", "BucketCounts", "histogram_family",
           "new_registry", "render"]

# What generate_latest writes: the text format 0.0.4. (The library's CONTENT_TYPE_LATEST
# names 1.0.0 since 0.22; its own HTTP handler pairs generate_latest with this one.)
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def new_registry() -> CollectorRegistry:
    """A registry for one master or worker, without ``*_created`` series.

    ``disable_created_metrics`` is process-wide in prometheus_client (there is no
    per-registry switch); no part of this project exports ``*_created``, so turning it
    off for the whole process is what every part wants.
    """
    disable_created_metrics()
    return CollectorRegistry()


def render(registry: CollectorRegistry) -> bytes:
    """The text format of every metric in ``registry``, read now."""
    return generate_latest(registry)


class BadBuckets(ValueError):
    """Histogram bounds that are not finite, non-empty and strictly increasing: a bug."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        super().__init__(f"histogram bucket bounds must be finite, non-empty and strictly "
                         f"increasing, not {self.bounds}")


@dataclass(frozen=True, slots=True)
class BucketCounts:
    """A snapshot of a ``BucketCounter``; adding two adds their counts (same bounds)."""

    bounds: tuple[float, ...]  # inclusive upper limits (``le``); +Inf is implicit
    counts: tuple[int, ...]  # per bucket, not cumulative; the last: above every bound
    sum: float

    @classmethod
    def empty(cls, bounds: Sequence[float]) -> BucketCounts:
        return cls(tuple(bounds), (0,) * (len(bounds) + 1), 0.0)

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> tuple[int, ...]:
        """One count per bound, then +Inf: as the text format wants them."""
        total, out = 0, []
        for n in self.counts:
            total += n
            out.append(total)
        return tuple(out)

    def __add__(self, other: BucketCounts) -> BucketCounts:
        assert self.bounds == other.bounds, (self.bounds, other.bounds)
        counts = tuple(a + b for a, b in zip(self.counts, other.counts))
        return BucketCounts(self.bounds, counts, self.sum + other.sum)


class BucketCounter:
    """Observations counted into fixed buckets: one bisect and three additions, no lock.

    For the trio thread only (that is why it needs no lock). Values must be finite.
    """

    def __init__(self, bounds: Sequence[float]) -> None:
        ordered = all(a < b for a, b in zip(bounds, bounds[1:]))
        if not bounds or not ordered or not all(math.isfinite(b) for b in bounds):
            raise BadBuckets(bounds)
        self.bounds = tuple(float(b) for b in bounds)
        self._counts = [0] * (len(self.bounds) + 1)
        self._sum = 0.0

    def observe(self, value: float) -> None:
        self._counts[bisect_left(self.bounds, value)] += 1  # value <= bound: that bucket
        self._sum += value

    def snapshot(self) -> BucketCounts:
        return BucketCounts(self.bounds, tuple(self._counts), self._sum)


def histogram_family(name: str, help: str, counts: BucketCounts) -> HistogramMetricFamily:
    """A histogram family of one series from ``counts``.

    The ``le`` values are spelled as before prometheus_client was used (``"1"``, not
    ``"1.0"``), so that no series changes its labels.
    """
    bounds = [_le(bound) for bound in counts.bounds] + ["+Inf"]
    return HistogramMetricFamily(name, help, buckets=list(zip(bounds, counts.cumulative())),
                                 sum_value=counts.sum)


def _le(bound: float) -> str:
    return str(int(bound)) if bound.is_integer() else repr(bound)
