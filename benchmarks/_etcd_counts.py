"""What etcd itself counted: requests, raft writes and watch events, from its own
Prometheus ``/metrics`` (on its client URL), and their arithmetic per fire.

Why etcd's counters and not hooks in the workers (``benchmarks/baseline14/``): they
need no patch of ``src/``, they count what reached the server whatever the client code
does, and they are the fleet's total by construction. etcd 3.4 splits everything the
scale benchmark needs:

    requests        ``grpc_server_msg_received_total``, all methods: every unary call
                    (Range, Txn, Put, DeleteRange, LeaseGrant, ...) and every message on
                    a stream (a lease keepalive, a watch create), as the baseline's
                    hooks counted them
    writes          ``etcd_server_proposals_committed_total``: requests that went
                    through raft. A transaction with a put or delete in either branch
                    is one even when its compare fails (a losing claim); a read-only
                    transaction (the backups' batched check) is not
    watch events    ``etcd_debugging_mvcc_events_total``: events etcd sent to watchers,
                    after their filters (the workers' ``running/`` watch asks for
                    deletions only, so the puts are never sent): the events the
                    workers received
    watch responses ``grpc_server_msg_sent_total{grpc_method="Watch"}``: messages on the
                    watch streams (a worker's thread hop each)

The counters are since etcd started: a benchmark reads them twice and subtracts. What
the fleet does every second whether or not anything fires (presence renewals, lease
keepalives) is measured apart, in a window with no firing job, and taken off pro rata
(``PerFire``), so that the per-fire figures are the fires' own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

REQUESTS = "grpc_server_msg_received_total"
WRITES = "etcd_server_proposals_committed_total"
WATCH_EVENTS = "etcd_debugging_mvcc_events_total"
RESPONSES_SENT = "grpc_server_msg_sent_total"
FIELDS = ("requests", "writes", "watch_events", "watch_responses")


class MetricsMissing(ValueError):
    """etcd's /metrics lacks a counter the benchmark needs (another etcd version?)."""


@dataclass(frozen=True)
class EtcdCounts:
    """etcd's counters at one instant (or the difference of two readings)."""

    requests: float
    writes: float
    watch_events: float
    watch_responses: float
    by_method: dict[str, float] = field(default_factory=dict)  # requests per gRPC method

    @classmethod
    def parse(cls, text: str) -> EtcdCounts:
        """From the text of etcd's ``/metrics``; ``MetricsMissing`` names what is absent."""
        by_method: dict[str, float] = {}
        found: dict[str, float] = {}
        watch_responses = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == REQUESTS:
                    method = sample.labels.get("grpc_method", "?")
                    by_method[method] = by_method.get(method, 0.0) + sample.value
                elif sample.name == RESPONSES_SENT:
                    if sample.labels.get("grpc_method") == "Watch":
                        watch_responses += sample.value
                elif sample.name in (WRITES, WATCH_EVENTS):
                    found[sample.name] = sample.value
        missing = [name for name in (WRITES, WATCH_EVENTS) if name not in found]
        if missing:
            raise MetricsMissing(f"etcd's /metrics has no {', '.join(missing)}")
        return cls(sum(by_method.values()), found[WRITES], found[WATCH_EVENTS],
                   watch_responses, by_method)

    def __sub__(self, other: EtcdCounts) -> EtcdCounts:
        methods = set(self.by_method) | set(other.by_method)
        return EtcdCounts(
            *(getattr(self, f) - getattr(other, f) for f in FIELDS),
            by_method={m: self.by_method.get(m, 0.0) - other.by_method.get(m, 0.0)
                       for m in sorted(methods)})

    def scaled(self, factor: float) -> EtcdCounts:
        return EtcdCounts(*(getattr(self, f) * factor for f in FIELDS),
                          by_method={m: v * factor for m, v in self.by_method.items()})

    def to_json(self, digits: int = 3) -> dict[str, object]:
        return {**{f: round(getattr(self, f), digits) for f in FIELDS},
                "by_method": {m: round(v, digits) for m, v in self.by_method.items() if v}}


@dataclass(frozen=True)
class PerFire:
    """A firing window's counts per fire, with the quiet window's rate taken off.

    ``window``: the counters' increase over ``window_s`` seconds in which ``fires``
    fires ran; ``quiet``: their increase over ``quiet_s`` seconds with the same fleet
    and no firing job (the background: presence, keepalives)."""

    window: EtcdCounts
    window_s: float
    fires: int
    quiet: EtcdCounts
    quiet_s: float

    @property
    def background_per_s(self) -> EtcdCounts:
        return self.quiet.scaled(1 / self.quiet_s)

    @property
    def gross(self) -> EtcdCounts:
        """Everything in the window, divided by its fires."""
        return self.window.scaled(1 / self.fires)

    @property
    def net(self) -> EtcdCounts:
        """The window less the background over as long, divided by its fires."""
        background = self.background_per_s.scaled(self.window_s)
        return (self.window - background).scaled(1 / self.fires)

    def to_json(self) -> dict[str, object]:
        return {"window_s": round(self.window_s, 3), "fires": self.fires,
                "quiet_s": round(self.quiet_s, 3), "window": self.window.to_json(1),
                "quiet": self.quiet.to_json(1),
                "background_per_s": self.background_per_s.to_json(),
                "per_fire_gross": self.gross.to_json(), "per_fire_net": self.net.to_json()}
