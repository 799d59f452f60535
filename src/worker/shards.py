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

One ``ShardState`` per worker tree (``worker.app``), like the ``SpillRoom``: the
JobWatcher writes it (the membership, the jobs it plans), the Locker reads it to rank a
fire among the job's servers, the Registrar publishes ``serving()`` (at once when it
changes: ``wait_changed``), the metrics read ``statistics()``. With shards off it is
inert: ``on`` is False and every worker serves every job, as before issue 14.
Used only in the trio thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import trio
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from cluster.presence import Serving, WorkerInfo, fleet_epoch
from cluster.shard_settings import ShardSettings
from cluster.slots import SlotTable, servers, slot_of

__all__ = ["ShardMetrics", "ShardState", "ShardStatistics", "handed_over", "membership"]


def membership(me: WorkerInfo, workers: Iterable[WorkerInfo]) -> tuple[WorkerInfo, ...]:
    """Whom slots are computed over: ``me`` and every other worker that publishes
    ``serving`` and is not leaving, sorted by id (pure: the module doc says why)."""
    fleet = {w.worker_id: w for w in workers
             if w.worker_id != me.worker_id and w.serving is not None
             and not w.serving.leaving}
    fleet[me.worker_id] = me
    return tuple(fleet[w] for w in sorted(fleet))


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

    @property
    def on(self) -> bool:
        return self.settings is not None

    # -- the membership (the JobWatcher) ---------------------------------------------

    def proposed(self, workers: Iterable[WorkerInfo]) -> tuple[WorkerInfo, ...] | None:
        """The membership ``workers`` call for, or None when it is the current one
        (same ids and labels: a republication changes nothing)."""
        fleet = membership(self.me, workers)
        same = [(w.worker_id, dict(w.labels)) for w in fleet] == \
            [(w.worker_id, dict(w.labels)) for w in self.fleet]
        return None if same else fleet

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
                               self.leaving, self.membership_changes)


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
