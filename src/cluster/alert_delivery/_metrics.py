"""The alert metrics, read from the deliverer's statistics at scrape time.

``<prefix>_alerts_sent_total{channel}``, ``<prefix>_alerts_failed_total{channel}``
(failed attempts) and ``<prefix>_alerts_pending{channel}`` (rows waiting in the outbox,
counted at most every 10 s by this process's deliverer). Channel names are few: an
admin names them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from ._deliverer import DeliveryStatistics

__all__ = ["AlertMetrics"]


class AlertMetrics:
    """A prometheus_client collector over ``read()`` (register it in a registry)."""

    def __init__(self, prefix: str, read: Callable[[], DeliveryStatistics]) -> None:
        self._prefix = prefix
        self._read = read

    def collect(self) -> Iterator[Metric]:
        stats = self._read()
        p = self._prefix
        sent = CounterMetricFamily(f"{p}_alerts_sent", "Alerts delivered, by channel",
                                   labels=["channel"])
        failed = CounterMetricFamily(f"{p}_alerts_failed",
                                     "Failed alert delivery attempts, by channel",
                                     labels=["channel"])
        pending = GaugeMetricFamily(f"{p}_alerts_pending",
                                    "Alerts waiting in the outbox, by channel",
                                    labels=["channel"])
        for family, counts in ((sent, stats.sent), (failed, stats.failed),
                               (pending, stats.pending)):
            for channel, n in sorted(counts.items()):
                family.add_metric([channel], n)
        yield from (sent, failed, pending)
