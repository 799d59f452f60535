"""The plan table: every job this worker knows and its next fire time, earliest first.

Why a dict plus a min-heap with lazy deletion: the Scheduler must sleep exactly until
the earliest fire and pay O(log n) per fire, never scanning the table (the original
scanned every job on every wake-up). Updates and deletions do not search the heap:
they bump the entry's generation and push a fresh item; stale items are skipped
when they surface, and the heap is rebuilt when stale items outnumber live ones.

Heap items are keyed by the time a fire is *due*, when the Scheduler hands it to the
Locker: ``next_ms - lead_ms``. The lead applies to jobs with concurrency ``allow``
only: their claim is settled ahead and the process still starts at ``next_ms``. A
``forbid``/``replace`` claim must judge the previous run at the fire time itself (a
per-second job running 970 ms would otherwise be skipped or replaced every time).
The lead may change (``set_lead``: it follows the claims' round trips,
``worker.claim_lead``): the heap is then rebuilt with every ``allow`` entry's new due
time, O(n), which the lead's coarse steps keep rare.

*A window, not a fire* (issue 14): when an ``allow`` fire is due, the ``allow`` fires
due within the next lead (``window_ms``) are handed over with it, so that a first
choice claims them in one transaction (the Locker's group commit) and marks them in one,
and the Scheduler wakes once per window instead of once per fire, and sends the window
to the Locker as one message (``ClaimWindow``). Why a whole lead and not half of it:
at 100 fires/s over 2 workers half a lead (100 ms) made each worker send about 8 claim
and 8 mark transactions a second; a lead, 5 of each (each transaction costs the worker
and etcd about 0.5 ms of CPU). A *full* window, one that holds ``WINDOW_MAX_FIRES``,
takes no more fires early (the fires due now all go): at a high rate each fire taken
early is one more process held ahead of its time, counted in ``capacity``, and a lead
of 0.3 s plus a whole window at 200 fires/s over 2 workers held 60 a worker, beside
the runs going: fires were skipped for want of capacity. A *thin* window, one
that holds fewer than ``WINDOW_MIN_FIRES`` fires, reaches further: it takes the
``allow`` fires due less than ``WINDOW_REACH_MS`` after the one that opened it (so no
job fires twice in it), until it holds ``WINDOW_MIN_FIRES``. At a low rate a lead
rarely holds two fires of a worker's share (20 fires/s over 8 workers: about 2.0 etcd
writes per fire, where issue 14 target 4 wants at most 1.5); a second holds several. A
dense window does not reach: its transactions are full already. So an ``allow`` fire is
handed over less than ``lead + WINDOW_REACH_MS`` before its time; its process is spawned
then, held, and still starts at its planned instant (``executor.start_at``). What the
reach costs: an edit or a pause up to that long before a fire applies from the next one
(a kill or a deletion still stops it before its command starts), and a claimed fire's
process waits that long, counted in the worker's ``capacity``. A backup still waits its
rank from the fleet's hand-over (``locker.claim_order``), and ``forbid``/``replace``
fires are never taken early: their claim judges the run before at their time, and one
due later stops the window, reach and all (it is handed over at its own).

Invariant: every entry whose ``next_ms`` is not None has exactly one heap item
carrying its current generation; every other heap item for that name is stale.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cluster.cron import CronSchedule
from cluster.spec import Concurrency, JobSpec, schedule_changed

# A window holding fewer fires than this reaches further, up to this far past its
# wake-up (module doc): one claim and one mark transaction for up to this many fires.
WINDOW_MIN_FIRES = 8
WINDOW_REACH_MS = 1000
# A window takes no fire early beyond this many (module doc): a dense window's fires
# are claimed in full transactions already, and each fire taken early is a process
# held ahead that counts in the worker's ``capacity``.
WINDOW_MAX_FIRES = 32


@dataclass(slots=True)
class PlanEntry:
    spec: JobSpec
    schedule: CronSchedule
    next_ms: int | None  # None: parked, the expression has no future time
    generation: int
    lead_ms: int  # handed over this long before next_ms

    def due_ms(self) -> int | None:
        return None if self.next_ms is None else self.next_ms - self.lead_ms


@dataclass(frozen=True, slots=True)
class Due:
    """One fire time that has come: ``late`` when it is beyond the grace to still run."""

    spec: JobSpec
    planned_ms: int
    late: bool


class PlanTable:
    def __init__(self, lead_ms: int = 0) -> None:
        self._lead_ms = lead_ms
        self._entries: dict[str, PlanEntry] = {}
        self._heap: list[tuple[int, int, str]] = []  # (due_ms, generation, name)
        self._generations = itertools.count()
        # Shards: jobs other workers serve now, out of the plan; a run of one here is
        # not a deleted job's (it ends as it would) until the job is deleted.
        self._handed_over: set[str] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str) -> PlanEntry | None:
        return self._entries.get(name)

    def names(self) -> set[str]:
        return set(self._entries)

    def upsert(self, spec: JobSpec, now_ms: int) -> PlanEntry:
        """Add or update a job. An unchanged schedule keeps its next fire time.

        The original reset the schedule on every save, so a job saved at 10:59:59 with
        ``0 11 * * *`` could miss its 11:00 run; here only a change of expression, time
        zone or anchor recomputes it.
        """
        self._handed_over.discard(spec.name)
        old = self._entries.get(spec.name)
        lead_ms = self._lead_for(spec)
        if old is not None and not schedule_changed(old.spec, spec):
            old.spec = spec
            if old.lead_ms != lead_ms:  # concurrency changed: same fire, new hand-over
                old.lead_ms, old.generation = lead_ms, next(self._generations)
                self._push(old)
            return old
        schedule = spec.schedule()
        entry = PlanEntry(spec, schedule, schedule.next_after(now_ms), next(self._generations),
                          lead_ms)
        self._entries[spec.name] = entry
        self._push(entry)
        return entry

    @property
    def lead_ms(self) -> int:
        return self._lead_ms

    @property
    def window_ms(self) -> int:
        """How far past now ``allow`` fires are handed over with one due now: a lead, so
        that an ``allow`` fire is handed over at most two leads before its time (a thin
        window aside)."""
        return self._lead_ms

    def set_lead(self, lead_ms: int) -> None:
        """Hand ``allow`` fires over ``lead_ms`` before their time from now on. Fires
        handed over already are not handed over again (their entry is past them); a
        longer lead may make some due at once, a shorter one later."""
        if lead_ms == self._lead_ms:
            return
        self._lead_ms = lead_ms
        for entry in self._entries.values():
            entry.lead_ms = self._lead_for(entry.spec)
        self._heap = [(due_ms, entry.generation, name) for name, entry in self._entries.items()
                      if (due_ms := entry.due_ms()) is not None]
        heapq.heapify(self._heap)

    def hand_over(self, name: str) -> None:
        """Other workers serve the job now (shards): out of the plan, its runs left."""
        if self.remove(name) is not None:
            self._handed_over.add(name)

    def runs_here(self, name: str) -> bool:
        """May a run of ``name`` go on here: planned, or handed over, not deleted?"""
        return name in self._entries or name in self._handed_over

    def delete(self, name: str) -> bool:
        """The job was deleted; True when its runs here must be killed."""
        here = self.runs_here(name)
        self.remove(name)
        self._handed_over.discard(name)
        return here

    def remove(self, name: str) -> PlanEntry | None:
        entry = self._entries.pop(name, None)
        self._maybe_compact()
        return entry

    def replace_all(self, specs: Iterable[JobSpec], now_ms: int,
                    handed_over: Iterable[str] = (), kept: Iterable[str] = ()) -> set[str]:
        """Converge on a full snapshot (start-up, compaction, a membership change):
        ``specs`` are upserted, ``kept`` entries (planned before and still, not sent
        again: shards) are left alone, ``handed_over`` go (``hand_over``). Returns the
        names of the jobs deleted, whose runs here must be killed: the entries in none
        of the three, and the jobs handed over earlier that are not among
        ``handed_over`` any more (a job both handed over and deleted is deleted)."""
        handed = set(handed_over)
        for name in handed:
            self.hand_over(name)
        seen = set(kept)
        for spec in specs:
            self.upsert(spec, now_ms)
            seen.add(spec.name)
        removed = set(self._entries) - seen
        for name in removed:
            self.remove(name)
        gone = self._handed_over - handed - seen
        self._handed_over -= gone
        return removed | gone

    def next_due_ms(self) -> int | None:
        """When the earliest fire is due to be handed over, or None if none is planned."""
        heap = self._heap
        while heap and not self._is_live(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now_ms: int, grace_ms: int) -> Iterator[Due]:
        """Yield every fire due by now_ms (its time, or its time minus the lead), and
        if any, the ``allow`` fires due within ``window_ms`` after it, or, while the
        window holds fewer than ``WINDOW_MIN_FIRES``, within ``WINDOW_REACH_MS`` (module
        doc), advancing each job past it.

        Fire times older than ``grace_ms`` come out with ``late=True``; a job that fell
        more than one grace behind (a stalled process, a clock jump) skips ahead to now
        instead of replaying each missed time one by one.
        """
        window_end_ms = reach_end_ms = now_ms  # no window until an allow fire is due
        opened = False
        handed = 0  # fires the window holds so far
        # self._heap, not a local: _push may rebuild the list mid-loop.
        while self._heap and self._heap[0][0] <= (
                reach_end_ms if handed < WINDOW_MIN_FIRES else window_end_ms):
            due_ms, generation, name = self._heap[0]
            entry = self._entries.get(name)
            if entry is None or entry.generation != generation or entry.next_ms is None:
                heapq.heappop(self._heap)
                continue
            if due_ms > now_ms and (entry.lead_ms == 0 or handed >= WINDOW_MAX_FIRES):
                # forbid/replace: at its own time, and the window ends here; a full
                # window takes no fire early (those due now all go, a burst whole)
                break
            heapq.heappop(self._heap)
            if entry.lead_ms and not opened:
                opened = True
                window_end_ms = now_ms + self.window_ms
                # Short of a whole reach from the first fire's due time: no job fires
                # twice in it (cron's finest step is 1 s), even on a late wake-up (a
                # job's second claim in one window would go alone, ``claim_batch``).
                reach_end_ms = max(window_end_ms, due_ms + WINDOW_REACH_MS - 1)
            handed += 1
            next_ms = entry.next_ms
            yield Due(entry.spec, next_ms, late=now_ms - next_ms > grace_ms)
            after = next_ms if now_ms - next_ms <= grace_ms else now_ms - grace_ms
            entry.next_ms = entry.schedule.next_after(after)
            self._push(entry)

    def _lead_for(self, spec: JobSpec) -> int:
        return self._lead_ms if spec.concurrency is Concurrency.ALLOW else 0

    def _push(self, entry: PlanEntry) -> None:
        due_ms = entry.due_ms()
        if due_ms is not None:
            heapq.heappush(self._heap, (due_ms, entry.generation, entry.spec.name))
        self._maybe_compact()

    def _is_live(self, item: tuple[int, int, str]) -> bool:
        entry = self._entries.get(item[2])
        return entry is not None and entry.generation == item[1] and entry.due_ms() == item[0]

    def _maybe_compact(self) -> None:
        if len(self._heap) > 2 * len(self._entries) + 64:
            self._heap = [item for item in self._heap if self._is_live(item)]
            heapq.heapify(self._heap)
