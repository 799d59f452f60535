"""The worker's Prometheus metrics (``scheduler_worker_*``), read from its actors' statistics.

Nothing in a worker increments a metric object: each actor counts what it does in plain
integers and returns a frozen record from ``statistics_detail()`` (and its mailbox's
from ``statistics()``). At scrape time, prometheus_client collectors read those records:
one ``ActorMetrics`` per actor, whose families are typed functions of that actor's
record (``lambda s: s.fires``), so the hot paths pay nothing and no metric names a
field by a string.

``app.build_tree`` passes every new incarnation of an actor to its ``track()``. When one
replaces a crashed one, the old one's final counts are carried over, so a ``*_total``
never goes down while the process lives (a process restart resets them, as Prometheus
expects). Gauges are the live incarnation's values; before an actor is first tracked,
its families have no samples (except those declared ``zeros``, and histograms).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

from prometheus_client import Gauge
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from actors import ActorStatistics
from cluster.metrics import BucketCounts, histogram_family, new_registry, render
from cluster.store import RunStatus

from .executor.actor import ExecutorStatistics
from .executor.run_as import UNKNOWN_USER, USER_NOT_ALLOWED
from .executor.run_tally import LATENESS_BOUNDS_S
from .job_watcher.actor import JobWatcherStatistics
from .locker.statistics import LockerStatistics
from .log_sink.actor import LogSinkStatistics
from .registrar.actor import RegistrarStatistics
from .scheduler.actor import SchedulerStatistics

__all__ = ["PREFIX", "ActorMetrics", "Level", "Observed", "Spread", "Total", "WorkerMetrics"]

PREFIX = "scheduler_worker_"
# The statuses an executed run can end in; their series show from the start, at 0.
EXECUTED_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMEOUT,
                     RunStatus.KILLED, RunStatus.REPLACED, RunStatus.LOST)

S = TypeVar("S")
S_co = TypeVar("S_co", covariant=True)
Labels = tuple[str, ...]


class Observed(Protocol[S_co]):
    """An actor whose counts can be read: every worker actor."""

    @property
    def name(self) -> str: ...

    def statistics(self) -> ActorStatistics: ...

    def statistics_detail(self) -> S_co: ...


A = TypeVar("A", bound=Observed[Any])


@dataclass(frozen=True, slots=True, eq=False)
class Total(Generic[S]):
    """A counter family read from a statistics record: label values -> count.

    Counts add up across incarnations. ``zeros``: label values shown at 0 from the
    start, before any incarnation is tracked.
    """

    name: str
    help: str
    read: Callable[[S], Mapping[Labels, int]]
    label_names: Labels = ()
    zeros: tuple[Labels, ...] = ()

    @classmethod
    def of(cls, name: str, help: str, read: Callable[[S], int]) -> Total[S]:
        """A counter without labels."""
        return cls(name, help, lambda stats: {(): read(stats)})


@dataclass(frozen=True, slots=True, eq=False)
class Level(Generic[S]):
    """A gauge read from the live incarnation's statistics record."""

    name: str
    help: str
    read: Callable[[S], float]


@dataclass(frozen=True, slots=True, eq=False)
class Spread(Generic[S]):
    """A histogram counted in a statistics record; counts add up across incarnations."""

    name: str
    help: str
    bounds: tuple[float, ...]
    read: Callable[[S], BucketCounts]


class ActorMetrics(Collector, Generic[S]):
    """The families of one actor, read from its live incarnation's statistics."""

    def __init__(self, *, totals: Sequence[Total[S]] = (), spreads: Sequence[Spread[S]] = (),
                 levels: Sequence[Level[S]] = ()) -> None:
        self._totals, self._spreads, self._levels = tuple(totals), tuple(spreads), tuple(levels)
        self.live: Observed[S] | None = None
        # What the incarnations before the live one counted (families are keyed by identity).
        self._carried: dict[Total[S], Counter[Labels]] = {t: Counter() for t in self._totals}
        self._carried_spreads = {s: BucketCounts.empty(s.bounds) for s in self._spreads}

    def track(self, actor: A) -> A:
        """Read ``actor`` from now on; carry over the counts of the one it replaces."""
        old = self.live
        if old is not None and old is not actor:
            stats = old.statistics_detail()
            for total in self._totals:
                self._carried[total].update(total.read(stats))
            for spread in self._spreads:
                self._carried_spreads[spread] += spread.read(stats)
        self.live = actor
        return actor

    def describe(self) -> Iterator[Metric]:
        """The families without reading any actor: the registry checks names with it."""
        return self._families(None)

    def collect(self) -> Iterator[Metric]:
        return self._families(None if self.live is None else self.live.statistics_detail())

    def _families(self, stats: S | None) -> Iterator[Metric]:
        for total in self._totals:
            counts = Counter(dict.fromkeys(total.zeros, 0))
            counts.update(self._carried[total])  # update, not +: that drops the zeros
            if stats is not None:
                counts.update(total.read(stats))
            family = CounterMetricFamily(PREFIX + total.name, total.help,
                                         labels=total.label_names)
            for labels, count in sorted(counts.items()):
                family.add_metric(labels, count)
            yield family
        for spread in self._spreads:
            buckets = self._carried_spreads[spread]
            if stats is not None:
                buckets += spread.read(stats)
            yield histogram_family(PREFIX + spread.name, spread.help, buckets)
        for level in self._levels:
            gauge = GaugeMetricFamily(PREFIX + level.name, level.help)
            if stats is not None:
                gauge.add_metric((), float(level.read(stats)))
            yield gauge


@dataclass(frozen=True, slots=True)
class _PerActor:
    name: str
    help: str
    kind: Literal["counter", "gauge"]
    read: Callable[[ActorStatistics], int]


# Mailboxes (and ActorStatistics' counts) outlive incarnations: no carrying needed.
_PER_ACTOR = (
    _PerActor("mailbox_depth", "Messages queued in each actor's mailbox.", "gauge",
              lambda s: s.mailbox.depth),
    _PerActor("mailbox_capacity", "Bound of each actor's mailbox.", "gauge",
              lambda s: s.mailbox.capacity),
    _PerActor("mailbox_senders_waiting", "Tasks blocked sending to each actor: backpressure.",
              "gauge", lambda s: s.mailbox.senders_waiting),
    _PerActor("messages_handled_total", "Messages each actor took from its mailbox.",
              "counter", lambda s: s.messages_handled),
    _PerActor("actor_restarts_total", "Times each actor was rebuilt after a failure.",
              "counter", lambda s: s.restarts),
)


class MailboxMetrics(Collector):
    """Each tracked actor's mailbox and restarts, labelled by the actor's name."""

    def __init__(self, actors: Sequence[ActorMetrics[Any]]) -> None:
        self._actors = tuple(actors)

    def describe(self) -> Iterator[Metric]:
        return self._families([])

    def collect(self) -> Iterator[Metric]:
        live = [a.live.statistics() for a in self._actors if a.live is not None]
        return self._families(sorted(live, key=lambda stats: stats.name))

    def _families(self, live: Sequence[ActorStatistics]) -> Iterator[Metric]:
        for per_actor in _PER_ACTOR:
            family_type = CounterMetricFamily if per_actor.kind == "counter" else GaugeMetricFamily
            family = family_type(PREFIX + per_actor.name, per_actor.help, labels=("actor",))
            for stats in live:
                family.add_metric((stats.name,), per_actor.read(stats))
            yield family


# Each written ``ActorMetrics[<its statistics record>](...)``: so a type checker checks
# every reader below against that record's fields (mypy does; inferred, they would be Any).


def _scheduler() -> ActorMetrics[SchedulerStatistics]:
    return ActorMetrics[SchedulerStatistics](totals=(
        Total.of("fires_total", "Scheduled and catch-up fires handed to the Locker "
                 "(manual runs and retries excluded).", lambda s: s.fires),
        Total.of("misfires_total", "Fire times passed over: later than the misfire grace.",
                 lambda s: s.misfires),
    ), levels=(
        Level("jobs", "Jobs in the plan table.", lambda s: s.jobs),
        Level("retries_pending", "Retries waiting for their backoff.", lambda s: s.retries_pending),
        Level("fires_queued", "Fires waiting for room in the Locker's mailbox.",
              lambda s: s.outbox),
        Level("claim_lead_seconds", "How long before their time fires of 'allow' jobs are "
              "handed over now: claim_lead_s, longer while claims are slow.",
              lambda s: s.claim_lead_ms / 1000),
    ))


def _locker() -> ActorMetrics[LockerStatistics]:
    return ActorMetrics[LockerStatistics](totals=(
        Total("claims_total", "Fire claims, by result: won, taken (another worker had it), "
              "skipped (recorded skipped), failed (etcd did not answer in time), "
              "spill_full (not claimed: the spill directory is full while the store is "
              "down), no_quorum (not tried: etcd had no leader; caught up after), "
              "not_served (not tried: shards on, other workers serve its job now).",
              lambda s: {("won",): s.won, ("taken",): s.taken, ("skipped",): s.skipped,
                         ("failed",): s.failed, ("spill_full",): s.spill_full,
                         ("no_quorum",): s.no_quorum, ("not_served",): s.not_served},
              ("result",)),
        Total("fires_skipped_total", "Fires not run, each counted by one worker of the "
              "cluster: running (its job still ran: forbid, or a replace whose run would "
              "not die; one skipped record per run), no_capacity (no eligible worker had "
              "room), unschedulable (no live worker matches its selector; no record).",
              lambda s: {("running",): s.skipped_running,
                         ("no_capacity",): s.skipped_no_capacity,
                         ("unschedulable",): s.unschedulable}, ("reason",)),
        Total.of("claim_retries_total", "Claim attempts made again within the fire's misfire "
                 "grace because etcd did not answer (a member down, an election) or its "
                 "answer was lost.", lambda s: s.retries),
    ), levels=(
        Level("claims_in_flight", "Fires being claimed now.", lambda s: s.in_flight),
        Level("etcd_no_quorum", "1 while etcd's members answer but none has a leader: "
              "this worker claims nothing until quorum is back.",
              lambda s: int(s.quorum_lost)),
        Level("clock_offset_seconds", "This worker's clock minus the median of the live "
              "workers' clocks (0 with fewer than three).", lambda s: s.clock_offset_ms / 1000),
        Level("clock_out_of_step", "1 while this worker's clock is further than "
              "--max-clock-skew-s from that median: it claims fires only as a last resort.",
              lambda s: int(s.out_of_step)),
    ))


def _executor() -> ActorMetrics[ExecutorStatistics]:
    return ActorMetrics[ExecutorStatistics](totals=(
        Total("runs_total", "Runs this worker executed, by final status.",
              lambda s: {(status.value,): n for status, n in s.runs.ended.items()},
              ("status",), zeros=tuple((status.value,) for status in EXECUTED_STATUSES)),
        Total("runs_refused_total", "Runs failed unstarted because of their job's user: "
              "user_not_allowed (not in --allowed-users), unknown_user (no such user here).",
              lambda s: {(USER_NOT_ALLOWED,): s.user_not_allowed,
                         (UNKNOWN_USER,): s.unknown_user}, ("reason",)),
        Total.of("runs_started_total", "Runs this worker won and began (StartRun accepted).",
                 lambda s: s.started),
        Total.of("spawn_failures_total", "Commands that could not be started.",
                 lambda s: s.spawn_failures),
        Total.of("run_records_lost_total",
                 "Run records the log sink could not take (logged instead).",
                 lambda s: s.records_lost),
    ), spreads=(
        Spread("fire_lateness_seconds", "Process start minus planned fire time of scheduled "
               "fires (not catch-up, retries or manual runs), seconds.", LATENESS_BOUNDS_S,
               lambda s: s.runs.lateness),
    ), levels=(
        Level("runs_running", "Runs started and not yet recorded.", lambda s: s.running),
    ))


def _log_sink() -> ActorMetrics[LogSinkStatistics]:
    return ActorMetrics[LogSinkStatistics](totals=(
        Total.of("sink_written_total", "Run records written to the store (replayed ones "
                 "included).", lambda s: s.written_total),
        Total.of("sink_spilled_total", "Run records appended to the spill file.",
                 lambda s: s.spilled_total),
        Total.of("sink_fence_spilled_total", "Run records spilled at once because the "
                 "worker was fenced (its session lease lost).", lambda s: s.fence_spilled_total),
        Total.of("sink_replayed_total", "Run records written to the store from the spill "
                 "file.", lambda s: s.replayed_total),
        Total.of("sink_rejected_total", "Run records the store refused for good (in the "
                 "rejected file).", lambda s: s.rejected_total),
        Total.of("sink_batches_total", "Batches written to the store.", lambda s: s.batches),
    ), levels=(
        Level("sink_queued", "Run records in the sink's memory, batches in flight included.",
              lambda s: s.queued),
        Level("sink_spill_pending", "Run records in the spill file, not yet replayed.",
              lambda s: s.spilled),
        Level("store_up", "1 when the run store is open and its last write succeeded.",
              lambda s: s.store_up),
        Level("spill_full", "1 while the spill file cannot grow (disk full) and records "
              "wait in memory: the worker claims no new fire.", lambda s: s.spill_full),
    ))


def _registrar() -> ActorMetrics[RegistrarStatistics]:
    return ActorMetrics[RegistrarStatistics](totals=(
        Total.of("session_registrations_total", "Session leases granted and registered.",
                 lambda s: s.registrations),
        Total.of("session_fenced_total", "Session leases lost: the runs they covered were "
                 "fenced.", lambda s: s.fenced),
        Total.of("session_renewals_failed_total", "Session lease renewals that failed.",
                 lambda s: s.renewals_failed),
    ))


def _job_watcher() -> ActorMetrics[JobWatcherStatistics]:
    return ActorMetrics[JobWatcherStatistics](totals=(
        Total.of("lost_runs_total", "Other workers' runs seen lost with their session.",
                 lambda s: s.lost_runs),
        Total.of("lost_runs_untold_total", "Workers that left whose runs could not be "
                 "told lost or ended (etcd's history compacted, or no answer): logged, "
                 "not recovered.", lambda s: s.lost_untold),
        Total.of("watch_compactions_total", "etcd watches that had to re-read after a "
                 "compaction.", lambda s: s.compactions),
        Total.of("invalid_specs_total", "Job values in etcd rejected as invalid.",
                 lambda s: s.invalid_specs),
    ), levels=(
        Level("workers", "Live workers this worker knows of (itself included).",
              lambda s: s.workers),
    ))


class WorkerMetrics:
    """Every metric one worker exports, in a registry of its own; one per worker tree.

    Its attributes ``scheduler`` .. ``job_watcher`` take each actor's incarnations
    (``track``); ``render()`` is the body of a scrape.
    """

    def __init__(self) -> None:
        self.registry = new_registry()
        Gauge(PREFIX + "up", "1 while the worker is running.", registry=self.registry).set(1)
        self.executor = _executor()
        self.locker = _locker()
        self.scheduler = _scheduler()
        self.log_sink = _log_sink()
        self.registrar = _registrar()
        self.job_watcher = _job_watcher()
        actors = (self.executor, self.locker, self.scheduler, self.log_sink, self.registrar,
                  self.job_watcher)
        for actor in actors:
            self.registry.register(actor)
        self.registry.register(MailboxMetrics(actors))

    def render(self) -> bytes:
        return render(self.registry)
