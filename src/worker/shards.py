"""Which jobs this worker serves in a sharded cluster, and what it says about it (§6b).

Shards are on when the cluster's ``<p>shards`` key holds S and R
(``cluster.shard_settings``, read once at start-up). Then a job is served by the R
workers its selector admits of highest rendezvous score in its slot
(``cluster.slots.servers``), computed over the worker's *membership*: the workers whose
registration says ``serving`` (and not ``leaving``), plus this worker itself, whatever
it published. That rule is make before break:

- a joining worker counts itself in at once, loads its slots' jobs and only then
  publishes ``serving``; the others keep its slots until they see that, so for a while
  both claim them (the claim transaction runs each fire once) and nobody drops one;
- a leaving worker publishes ``leaving``: the others count it out and load its slots,
  then publish the membership they loaded for; it keeps serving until they all have
  (``handed_over``), at most a bounded wait, then stops as any worker does;
- a dead worker's key goes with its lease: the others count it out and load what they
  gained, while the other R - 1 servers of each of its slots claim as they always did.

Why it never leaves a job unserved: a worker X drops a job only for servers it counts,
and counts only workers that say ``serving``, i.e. have loaded a plan. Take the
highest-scoring loaded worker Y of the job's slot: every worker Y counts but itself is
loaded, hence scores lower, so Y is among the job's R best in its own membership and
plans it. (Transients aside: a plan reloading, a view that lags one event.)

*Cold start by cohort.* By that rule alone, workers that start together each count
only themselves until the others say ``serving``: each plans every job first and sheds
them as the others load, so a cold-started fleet's high-water mark is a whole plan on
every worker (DESIGN §6b "Memory"). So at start-up (``settle``) a worker waits for the
registrations to settle (``COHORT_QUIET_S`` with no change in workers/, at most
``COHORT_MAX_S``) and takes as its *cohort* the workers registered then and not
leaving, serving or not; its first membership also counts the cohort's *fresh*
members, those not serving yet (``membership(counted=...)``). Workers that start
together thus count each other once, and each plans only its share. A fresh member
counted before it has loaded breaks the argument above: for a job whose R best are
all fresh, nobody plans it until the first of them has loaded. That is safe only if
the fresh members agree on the cohort, so that each of the job's servers, once loaded,
plans it; hence the cohort rule is dropped for good (back to the rule above, the plan
reloaded: a *fallback*) as soon as a fresh member publishes ``serving`` for another
membership than this worker's cohort (``cohort_verdict``: their views disagree), or a
fresh member still does not serve ``COHORT_TIMEOUT_S`` after the settle; it ends when
every fresh member serves as agreed (the two rules then count the same workers). What
it costs, bounded: a job may go unplanned between the first load of the cohort and the
first load of one of its servers (seconds: they read jobs/ together), plus, when the
views disagree, until the fallback's reload. At a cold start of the whole fleet those
seconds extend the outage the fleet is coming back from, and are caught up with it
(``catch_up``: a job's server catches up from its ``state/`` cursor when it first
plans it, within ``startingDeadline``; a job without one misses them, as it misses the
outage). A worker starting alone waits ``COHORT_QUIET_S`` and counts only itself and
the serving workers. Workers joining a running fleet together count the serving ones
and each other; the serving ones count a joiner only once it serves, but that joiner
may have left a job to a fellow joiner still loading, so the same window (bounded by
the joiners' loads, the same check and fallback) applies to joiners that start
together; a fire missed in it is caught up, within ``startingDeadline``, by the
server that gains the job. Exactly once is never at stake: the claim transaction
runs each fire once, however many workers plan it.

One ``ShardState`` per worker tree (``worker.app``), like the ``SpillRoom``: the
JobWatcher writes it (the membership, the jobs it plans), the Locker reads it to rank a
fire among the job's servers, the Registrar publishes ``serving()`` (at once when it
changes: ``wait_changed``), the metrics read ``statistics()``. With shards off it is
inert: ``on`` is False and every worker serves every job, as before issue 14.
Used only in the trio thread.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import trio
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from cluster.presence import Serving, WorkerInfo, fleet_epoch
from cluster.shard_settings import ShardSettings
from cluster.slots import SlotTable, servers, slot_of

log = logging.getLogger(__name__)

__all__ = ["COHORT_MAX_S", "COHORT_QUIET_S", "COHORT_TIMEOUT_S", "CohortVerdict",
           "ShardMetrics", "ShardState", "ShardStatistics", "cohort_verdict", "handed_over",
           "membership", "settle_left"]

COHORT_QUIET_S = 0.5  # the registrations have settled after this long without a change
COHORT_MAX_S = 2.0  # ... or after this long whatever they do
COHORT_TIMEOUT_S = 30.0  # a fresh cohort member not serving by then: fall back


def membership(me: WorkerInfo, workers: Iterable[WorkerInfo],
               counted: Collection[str] = ()) -> tuple[WorkerInfo, ...]:
    """Whom slots are computed over: ``me`` and every other worker that publishes
    ``serving`` and is not leaving, and those of ``counted`` (a cold start's fresh
    cohort members) that are registered and not leaving though not serving yet, sorted
    by id (pure: the module doc says why)."""
    fleet = {w.worker_id: w for w in workers
             if w.worker_id != me.worker_id
             and (w.serving is None and w.worker_id in counted
                  or w.serving is not None and not w.serving.leaving)}
    fleet[me.worker_id] = me
    return tuple(fleet[w] for w in sorted(fleet))


def settle_left(started_s: float, changed_s: float | None, now_s: float,
                quiet_s: float = COHORT_QUIET_S, max_s: float = COHORT_MAX_S) -> float:
    """How long a cold start still waits for the registrations to settle: until
    ``quiet_s`` after the later of its start and the last change of workers/, and no
    later than ``max_s`` after its start; 0 when settled (pure)."""
    quiet_until = max(started_s, changed_s if changed_s is not None else started_s) + quiet_s
    return max(0.0, min(quiet_until, started_s + max_s) - now_s)


class CohortVerdict(enum.Enum):
    COUNTING = "counting"  # some fresh member is still loading: keep counting it
    ENDED = "ended"  # every fresh member serves the cohort: the usual rule counts the same
    FALLBACK = "fallback"  # views disagree, or one took too long: the usual rule, reloaded


def cohort_verdict(fresh: Iterable[str], epoch: str, workers: Iterable[WorkerInfo],
                   first_epochs: Mapping[str, str],
                   timed_out: bool) -> tuple[CohortVerdict, str]:
    """Does the cold-start cohort rule still hold (module doc)? ``fresh``: the cohort
    members not serving at the settle, this worker aside; ``epoch``: the cohort's
    ``fleet_epoch``; ``first_epochs``: the ``fleet`` each fresh member published first
    with ``serving``. Gone or leaving members are not waited for. Returns the verdict
    and, for a fallback, why (pure)."""
    by_id = {w.worker_id: w for w in workers}
    waiting = []
    for worker_id in sorted(fresh):
        info = by_id.get(worker_id)
        if info is None or info.serving is not None and info.serving.leaving:
            continue
        first = first_epochs.get(worker_id)
        if first is None:
            waiting.append(worker_id)
        elif first != epoch:
            return CohortVerdict.FALLBACK, f"{worker_id} loaded for another membership"
    if waiting and timed_out:
        return CohortVerdict.FALLBACK, (f"{', '.join(waiting)} not serving "
                                        f"{COHORT_TIMEOUT_S:g} s after the start")
    return (CohortVerdict.COUNTING if waiting else CohortVerdict.ENDED), ""


def handed_over(me: str, workers: Iterable[WorkerInfo]) -> bool:
    """Has every other serving worker loaded its slots for the membership without
    ``me``? What a leaving worker waits for before it stops claiming."""
    others = [w for w in workers if w.worker_id != me and w.serving is not None
              and not w.serving.leaving]
    epoch = fleet_epoch(w.worker_id for w in others)
    return all(w.serving is not None and w.serving.fleet == epoch for w in others)


@dataclass(frozen=True, slots=True)
class ShardStatistics:
    on: bool
    jobs_planned: int  # the jobs it serves (shards on; else every job: the plan's gauge)
    slots_owned: int  # slots this worker owns (labels aside); 0 with shards off
    fleet_size: int  # the membership its jobs are computed over
    published: bool  # its registration says serving (it has loaded them)
    leaving: bool
    membership_changes: int  # reloads of the jobs it serves
    cohort: str = "none"  # the cold start: none (not settled), counting, ended, fallback


class ShardState:
    """The worker's view of its shards (module doc)."""

    def __init__(self, worker_id: str, labels: Mapping[str, str] | None = None,
                 settings: ShardSettings | None = None) -> None:
        self.settings = settings
        self.me = WorkerInfo(worker_id, "", 0, MappingProxyType(dict(labels or {})))
        self.fleet: tuple[WorkerInfo, ...] = (self.me,)
        self._table: SlotTable | None = None
        self._loaded: tuple[WorkerInfo, ...] | None = None  # what it has published
        self.leaving = False
        self.membership_changes = 0
        self.served: set[str] = set()  # names of the jobs it plans (shards on)
        # Jobs of its own slots that it does not plan: their selector rules it out.
        # Bounded by the selector jobs of its slots, not by all jobs (``elsewhere``).
        self.excluded: set[str] = set()
        self._changed = trio.Event()
        # The cold start (module doc): the registrations seen last and when they last
        # changed (trio time), then the cohort's fresh members while it counts them.
        self._workers: tuple[WorkerInfo, ...] = ()
        self._workers_key: object = None
        self._workers_changed_s: float | None = None
        self._settled = trio.Event()
        self._fresh: frozenset[str] = frozenset()
        self._cohort_epoch = ""
        self._first_epochs: dict[str, str] = {}
        self.cohort_deadline_s: float | None = None  # trio time: fall back if not ended
        self.cohort = "none"

    @property
    def on(self) -> bool:
        return self.settings is not None

    # -- the membership (the JobWatcher) ---------------------------------------------

    def seen(self, workers: Iterable[WorkerInfo], now_s: float) -> None:
        """The registrations as they are now (the fleet listener, on every change of
        workers/): remembered for the settle and the cohort (trio time ``now_s``)."""
        self._workers = tuple(workers)
        key = sorted((w.worker_id, w.serving) for w in self._workers)
        if key != self._workers_key:  # a republication is no change
            self._workers_key, self._workers_changed_s = key, now_s

    async def settle(self) -> None:
        """At start-up, before the first load: wait for the registrations to settle,
        then take the cohort and adopt the membership it calls for (module doc). Once
        per worker: a JobWatcher started again does not wait."""
        if not self.on or self._settled.is_set():
            return
        started_s = trio.current_time()
        while (left := settle_left(started_s, self._workers_changed_s,
                                   trio.current_time())) > 0:
            await trio.sleep(left)
        workers = self._workers
        cohort = frozenset(w.worker_id for w in workers
                           if w.serving is None or not w.serving.leaving) | {self.me.worker_id}
        self._fresh = frozenset(w.worker_id for w in workers if w.serving is None
                                and w.worker_id != self.me.worker_id)
        self._cohort_epoch = fleet_epoch(cohort)
        if self._fresh:
            self.cohort = CohortVerdict.COUNTING.value
            self.cohort_deadline_s = trio.current_time() + COHORT_TIMEOUT_S
            log.info("shards: cold start with %d workers registered (%s): counting the %d "
                     "not serving yet", len(cohort), ", ".join(sorted(cohort)),
                     len(self._fresh))
        else:
            self.cohort = CohortVerdict.ENDED.value
        self._settled.set()
        fleet = self.proposed(workers)
        if fleet is not None:
            self.adopt(fleet)

    async def wait_settled(self) -> None:
        await self._settled.wait()

    def proposed(self, workers: Iterable[WorkerInfo],
                 now_s: float | None = None) -> tuple[WorkerInfo, ...] | None:
        """The membership ``workers`` call for, or None when it is the current one
        (same ids and labels: a republication changes nothing). While the cold start's
        cohort counts its fresh members, judges it first (``cohort_verdict``; ``now_s``,
        trio time, for its timeout)."""
        workers = tuple(workers)
        if self._fresh:
            self._judge_cohort(workers, now_s)
        fleet = membership(self.me, workers, self._fresh)
        same = [(w.worker_id, dict(w.labels)) for w in fleet] == \
            [(w.worker_id, dict(w.labels)) for w in self.fleet]
        return None if same else fleet

    def _judge_cohort(self, workers: tuple[WorkerInfo, ...], now_s: float | None) -> None:
        present = {w.worker_id for w in workers}
        self._fresh &= present  # one that went and comes back is a joiner, not counted
        for w in workers:
            if w.worker_id in self._fresh and w.serving is not None:
                self._first_epochs.setdefault(w.worker_id, w.serving.fleet)
        timed_out = (now_s is not None and self.cohort_deadline_s is not None
                     and now_s >= self.cohort_deadline_s)
        verdict, why = cohort_verdict(self._fresh, self._cohort_epoch, workers,
                                      self._first_epochs, timed_out)
        if verdict is CohortVerdict.COUNTING:
            return
        self._fresh, self.cohort_deadline_s, self.cohort = frozenset(), None, verdict.value
        if verdict is CohortVerdict.FALLBACK:
            log.warning("shards: cold start: %s; counting only the workers that serve",
                        why)
        else:
            log.info("shards: cold start done: every worker of the cohort serves")

    def adopt(self, fleet: tuple[WorkerInfo, ...]) -> None:
        """Compute slots over ``fleet`` from now on (before the jobs are loaded: the
        Locker ranks over it at once, so a slot dropped is dropped everywhere here)."""
        self.fleet = fleet
        self._table = None
        self.membership_changes += 1

    def loaded(self) -> None:
        """The jobs of the current membership are planned: publish ``serving``."""
        if self._loaded != self.fleet:
            self._loaded = self.fleet
            self._notify()

    def leave(self, leaving: bool = True) -> None:
        """Say the worker is leaving (a graceful stop), or not any more (a JobWatcher
        started again by its supervisor serves again)."""
        if self.leaving != leaving:
            self.leaving = leaving
            self._notify()

    # -- who serves what ------------------------------------------------------------

    @property
    def table(self) -> SlotTable:
        assert self.settings is not None, "shards are off"
        if self._table is None:
            self._table = SlotTable.build((w.worker_id for w in self.fleet),
                                          self.settings.replicas, slots=self.settings.slots)
        return self._table

    def servers(self, name: str, selector: Mapping[str, str]) -> tuple[str, ...]:
        """The job's servers over the membership, best first (shards on only)."""
        assert self.settings is not None, "shards are off"
        slot = slot_of(name, self.settings.slots)
        if not selector:
            return self.table.owners[slot]
        return servers(slot, self.fleet, selector, self.settings.replicas,
                       slots=self.settings.slots)

    def serves(self, name: str, selector: Mapping[str, str]) -> bool:
        return not self.on or self.me.worker_id in self.servers(name, selector)

    def plans(self, name: str, selector: Mapping[str, str]) -> bool:
        """Does this worker plan the job? Its servers do; a job no live worker can run
        (its selector matches none) is planned by the first owner of its slot alone,
        whose Locker only counts its fires unschedulable, as one worker does today."""
        if not self.on:
            return True
        servers = self.servers(name, selector)
        if self.me.worker_id in servers:
            return True
        return not servers and \
            self.table.owners[slot_of(name, self.table.slots)][0] == self.me.worker_id

    def owns_slot_of(self, name: str) -> bool:
        """Does this worker own the job's slot, labels aside? Who handles what is left
        of a job that no longer exists (a lost run of a deleted job)."""
        return not self.on or self.table.owns(self.me.worker_id, name)

    def elsewhere(self, name: str) -> bool:
        """Do other workers serve ``name``, a job this one may not have seen yet? What
        decides whether a run-now or a lost run is this worker's, without asking etcd.

        A worker parses every job of its own slots and every job with a selector. So a
        job it does not plan is served elsewhere if its slot is not its own (a job
        without a selector is its owners'; one whose selector makes this worker a
        fallback is planned as soon as its put is seen, and its pending run requests
        are read again then: ``JobsListener``) or if its selector rules it out
        (``excluded``). What is left, a job of its own
        slots that it has not seen, is its own: one whose put has not reached it yet
        (two watch streams, no common order), or one deleted (its lost runs are its
        slot owners')."""
        return self.on and name not in self.served and \
            (not self.owns_slot_of(name) or name in self.excluded)

    # -- what it says (the Registrar, the metrics) ------------------------------------

    def serving(self) -> Serving | None:
        """The ``serving`` of this worker's registration: None until it has loaded its
        jobs once, and always with shards off (a registration as before shards)."""
        if not self.on or self._loaded is None:
            return None
        return Serving(fleet_epoch(w.worker_id for w in self._loaded), len(self._loaded),
                       self.leaving)

    async def wait_changed(self) -> None:
        """Until ``serving()`` may have changed since the last call returned."""
        await self._changed.wait()
        self._changed = trio.Event()

    def _notify(self) -> None:
        self._changed.set()

    def statistics(self) -> ShardStatistics:
        owned = len(self.table.slots_of(self.me.worker_id)) if self.on else 0
        return ShardStatistics(self.on, len(self.served), owned, len(self.fleet), self._loaded is not None,
                               self.leaving, self.membership_changes, self.cohort)


class ShardMetrics:
    """A prometheus_client collector over ``ShardState.statistics`` (``worker.metrics``
    says why metrics are read, not pushed); no samples while shards are off."""

    def __init__(self, read: Callable[[], ShardStatistics]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        stats = self._read()
        if not stats.on:
            return
        for name, help_, value in (
                ("jobs_planned", "Jobs this worker serves, hence plans (shards on).",
                 stats.jobs_planned),
                ("shard_slots_owned", "Slots this worker owns, labels aside.", stats.slots_owned),
                ("shard_fleet_size", "Workers its slots are computed over: those that say "
                 "they serve, and itself.", stats.fleet_size),
                ("shard_serving", "1 once its registration says serving (jobs loaded).",
                 int(stats.published)),
                ("shard_leaving", "1 while it hands its slots over on a graceful stop.",
                 int(stats.leaving))):
            yield GaugeMetricFamily(f"scheduler_worker_{name}", help_, value=value)
