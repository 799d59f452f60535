"""The worker's Prometheus metrics: what its actors count, exported as ``scheduler_worker_*``.

Two sources, so that the hot paths pay (almost) nothing:

- Owned here, updated where the event happens, O(1): ``runs_total{status}`` and the
  ``fire_lateness_seconds`` histogram, both by the Executor (``run_started`` and
  ``run_finished``; it reaches this object through ``WorkerContext.metrics``).
- Read at scrape time: counts the actors already keep (``statistics_detail()``) and
  their mailboxes (``statistics()``). ``app.build_tree`` passes every new actor
  incarnation through ``track()``. When an incarnation replaces a crashed one, the
  old one's final counts are carried over, so a ``*_total`` never goes down while the
  process lives (a process restart resets them, as Prometheus expects).

Every read is a plain attribute access in the trio thread: no locks, no awaits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Literal, Protocol, TypeVar

from actors import ActorStatistics
from cluster.metrics import Counter, Gauge, Histogram, Registry, Sampled
from cluster.store import RunStatus, RunTrigger

from .run_as import REFUSAL_REASONS  # each is also a field of ExecutorStatistics

__all__ = ["LATENESS_BOUNDS_S", "PREFIX", "Tracked", "WorkerMetrics"]

PREFIX = "scheduler_worker_"
# 1 ms .. 10 s: the design's latency goal is milliseconds; beyond the misfire grace
# (5 s by default) a fire is passed over, so longer lateness cannot be observed.
LATENESS_BOUNDS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                     5.0, 10.0)
# The statuses an executed run can end in; their series show from the start, at 0.
EXECUTED_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMEOUT,
                     RunStatus.KILLED, RunStatus.LOST)


class Tracked(Protocol):
    """An actor whose counts can be read: every worker actor."""

    @property
    def name(self) -> str: ...

    def statistics(self) -> ActorStatistics: ...

    def statistics_detail(self) -> object: ...  # a dataclass of counts and gauges


A = TypeVar("A", bound=Tracked)
Read = Callable[[], Mapping[tuple[str, ...], float]]

# (metric, help, actor, statistics field). Counters add up across incarnations.
_COUNTERS = (
    ("fires_total", "Scheduled and catch-up fires handed to the Locker "
     "(manual runs and retries excluded).", "scheduler", "fires"),
    ("misfires_total", "Fire times passed over: later than the misfire grace.",
     "scheduler", "misfires"),
    ("runs_started_total", "Runs this worker won and began (StartRun accepted).",
     "executor", "started"),
    ("spawn_failures_total", "Commands that could not be started.",
     "executor", "spawn_failures"),
    ("run_records_lost_total", "Run records the log sink could not take (logged instead).",
     "executor", "records_lost"),
    ("sink_written_total", "Run records written to the store (replayed ones included).",
     "log-sink", "written_total"),
    ("sink_spilled_total", "Run records appended to the spill file.",
     "log-sink", "spilled_total"),
    ("sink_replayed_total", "Run records written to the store from the spill file.",
     "log-sink", "replayed_total"),
    ("sink_rejected_total", "Run records the store refused for good (in the rejected file).",
     "log-sink", "rejected_total"),
    ("sink_batches_total", "Batches written to the store.", "log-sink", "batches"),
    ("session_registrations_total", "Session leases granted and registered.",
     "registrar", "registrations"),
    ("session_fenced_total", "Session leases lost: the runs they covered were fenced.",
     "registrar", "fenced"),
    ("session_renewals_failed_total", "Session lease renewals that failed.",
     "registrar", "renewals_failed"),
    ("lost_runs_total", "Other workers' runs seen lost with their session.",
     "job-watcher", "lost_runs"),
    ("watch_compactions_total", "etcd watches that had to re-read after a compaction.",
     "job-watcher", "compactions"),
    ("invalid_specs_total", "Job values in etcd rejected as invalid.",
     "job-watcher", "invalid_specs"),
)
# (metric, help, actor, statistics field). Gauges are the live incarnation's values.
_GAUGES = (
    ("jobs", "Jobs in the plan table.", "scheduler", "jobs"),
    ("retries_pending", "Retries waiting for their backoff.", "scheduler", "retries_pending"),
    ("fires_queued", "Fires waiting for room in the Locker's mailbox.", "scheduler", "outbox"),
    ("claims_in_flight", "Fires being claimed now.", "locker", "in_flight"),
    ("runs_running", "Runs started and not yet recorded.", "executor", "running"),
    ("sink_queued", "Run records in the sink's memory, batches in flight included.",
     "log-sink", "queued"),
    ("sink_spill_pending", "Run records in the spill file, not yet replayed.",
     "log-sink", "spilled"),
    ("store_up", "1 when the run store is open and its last write succeeded.",
     "log-sink", "store_up"),
    ("workers", "Live workers this worker knows of (itself included).",
     "job-watcher", "workers"),
)
_CLAIM_RESULTS = ("won", "taken", "skipped", "failed")
# (metric, help, kind, what to read). Mailboxes outlive incarnations: no carrying needed.
_PER_ACTOR: tuple[tuple[str, str, Literal["counter", "gauge"],
                        Callable[[ActorStatistics], float]], ...] = (
    ("mailbox_depth", "Messages queued in each actor's mailbox.", "gauge",
     lambda s: s.mailbox.depth),
    ("mailbox_capacity", "Bound of each actor's mailbox.", "gauge",
     lambda s: s.mailbox.capacity),
    ("mailbox_senders_waiting", "Tasks blocked sending to each actor: backpressure.",
     "gauge", lambda s: s.mailbox.senders_waiting),
    ("messages_handled_total", "Messages each actor took from its mailbox.",
     "counter", lambda s: s.messages_handled),
    ("actor_restarts_total", "Times each actor was rebuilt after a failure.",
     "counter", lambda s: s.restarts),
)


class WorkerMetrics:
    """Every metric one worker exports; one instance per worker, in its WorkerContext."""

    def __init__(self) -> None:
        self._live: dict[str, Tracked] = {}  # actor name -> current incarnation
        self._carried: dict[str, dict[str, int]] = {}  # actor name -> earlier counts
        registry = self.registry = Registry(PREFIX)
        registry.register(Gauge("up", "1 while the worker is running.", 1))
        self.runs = registry.register(Counter(
            "runs_total", "Runs this worker executed, by final status.", ("status",)))
        for status in EXECUTED_STATUSES:
            self.runs.inc(status.value, by=0)
        self.lateness = registry.register(Histogram(
            "fire_lateness_seconds", "Process start minus planned fire time of scheduled "
            "fires (not catch-up, retries or manual runs), seconds.", LATENESS_BOUNDS_S))
        registry.register(Sampled(
            "claims_total", "Fire claims, by result: won, taken (another worker had it), "
            "skipped (recorded skipped), failed (etcd did not answer in time).",
            "counter", self._claims, ("result",)))
        registry.register(Sampled(
            "runs_refused_total", "Runs failed unstarted because of their job's user: "
            "user_not_allowed (not in --allowed-users), unknown_user (no such user here).",
            "counter", self._refused, ("reason",)))
        for name, help_text, actor, field in _COUNTERS:
            registry.register(Sampled(name, help_text, "counter", self._total(actor, field)))
        for name, help_text, actor, field in _GAUGES:
            registry.register(Sampled(name, help_text, "gauge", self._current(actor, field)))
        self._register_mailboxes(registry)

    # -- hot path (the Executor) -------------------------------------------------------

    def run_started(self, trigger: RunTrigger, planned_ms: int, start_ms: int) -> None:
        """A process started: observe the lateness of a scheduled fire. O(1)."""
        if trigger is RunTrigger.SCHEDULE:
            self.lateness.observe((start_ms - planned_ms) / 1000)

    def run_finished(self, status: RunStatus) -> None:
        self.runs.inc(status.value)

    # -- scrape-time reads -------------------------------------------------------------

    def track(self, actor: A) -> A:
        """Read ``actor`` from now on; carry over the counts of the one it replaces."""
        old = self._live.get(actor.name)
        if old is not None and old is not actor:
            carried = self._carried.setdefault(actor.name, {})
            for field, value in _counts(old.statistics_detail()).items():
                carried[field] = carried.get(field, 0) + value
        self._live[actor.name] = actor
        return actor

    def render(self) -> str:
        return self.registry.render()

    def _field(self, actor: str, field: str) -> float | None:
        live = self._live.get(actor)
        return None if live is None else getattr(live.statistics_detail(), field)

    def _sum(self, actor: str, field: str) -> float | None:
        """The live incarnation's count plus its predecessors'; None before the first."""
        value = self._field(actor, field)
        return None if value is None else value + self._carried.get(actor, {}).get(field, 0)

    def _total(self, actor: str, field: str) -> Read:
        def read() -> Mapping[tuple[str, ...], float]:
            value = self._sum(actor, field)
            return {} if value is None else {(): value}
        return read

    def _current(self, actor: str, field: str) -> Read:
        def read() -> Mapping[tuple[str, ...], float]:
            value = self._field(actor, field)
            return {} if value is None else {(): float(value)}
        return read

    def _claims(self) -> Mapping[tuple[str, ...], float]:
        counts = {(result,): self._sum("locker", result) for result in _CLAIM_RESULTS}
        return {labels: n for labels, n in counts.items() if n is not None}

    def _refused(self) -> Mapping[tuple[str, ...], float]:
        counts = {(reason,): self._sum("executor", reason) for reason in REFUSAL_REASONS}
        return {labels: n for labels, n in counts.items() if n is not None}

    def _register_mailboxes(self, registry: Registry) -> None:
        for name, help_text, kind, pick in _PER_ACTOR:
            registry.register(Sampled(name, help_text, kind, self._per_actor(pick), ("actor",)))

    def _per_actor(self, pick: Callable[[ActorStatistics], float]) -> Read:
        return lambda: {(name,): pick(a.statistics()) for name, a in self._live.items()}


def _counts(stats: object) -> dict[str, int]:
    """The integer fields of a statistics dataclass (bools and None are not counts)."""
    assert dataclasses.is_dataclass(stats), stats
    values = {f.name: getattr(stats, f.name) for f in dataclasses.fields(stats)}
    return {k: v for k, v in values.items() if isinstance(v, int) and not isinstance(v, bool)}
