"""Shards: which workers serve a job, by the slot its name hashes into (issue 14).

Why: today every worker plans every job and watches every run, so the cost of one fire
grows with the fleet (DESIGN "Shards (issue 14)"). Here each job name hashes into one of
a fixed number S of *slots*, and each slot is *owned* by R workers chosen by rendezvous
(highest-random-weight) hashing. A worker plans only the jobs of the slots it owns and
watches only those slots' run keys; the claim stays the exactly-once transaction of
DESIGN §6, so two workers that both think they serve a slot (during a join or a leave)
can never both run a fire.

The formulas (every worker computes them alike, with no message)::

    slot_of(name)       = blake2b("job:<name>", 8 bytes, big-endian) mod S
    score(slot, worker) = blake2b("slot:<slot>|<worker id>", 8 bytes, big-endian)
    owners(slot)        = the R workers of highest score (ties: the smaller id first)

Never Python's ``hash()``: it is salted per process, and two workers would disagree.
Changing either formula, or S, moves almost every job to other workers: that is a
migration of a stopped cluster, never an upgrade. Rendezvous hashing is what makes a
change of the fleet cheap: adding a worker takes, in each slot, at most one place (the
lowest owner's) and only where it scores higher; removing one gives its places to the
next in each of its slots. No other slot changes owners, so a join or a leave moves
about R·S/W slots of the S.

Selectors (``servers``): a slot holds jobs of every selector, so ownership ignores
labels, and a job is served by the R workers *that match its selector* of highest score
in its slot. For a job without a selector that is the slot's owners. A job whose
selector no owner matches still runs: it is served by the best-scoring matching workers
outside the owners (the same rendezvous order, the non-matching ones skipped), so
those workers watch its slot too. A job no live worker matches is served by nobody, as
today (DESIGN §6: counted, shown unschedulable).

Balance: a worker's count of slots is close to Binomial(S, R/W) (mean R·S/W; standard
deviation sqrt(S·(R/W)·(1-R/W))). S must be large against W/R for the busiest worker to
be near the mean. For the fleets ``worker-000``, ``worker-001``, ...: with S = 256, 8
workers own 48 to 73 slots each (mean 64), but 100 workers 0 to 13 (mean 5.1); with
S = 4096, 100 workers own 63 to 105 (mean 82). ``python -m benchmarks.scale --model``
prints the figures.

Pure and blocking-free: everything here is computed from the list of live workers.
Whoever places work may import it; it depends on ``cluster.presence`` only.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from .presence import WorkerInfo

__all__ = [
    "DEFAULT_REPLICAS", "DEFAULT_SLOTS", "MAX_SLOTS", "SlotError", "SlotTable", "check_count",
    "owners",
    "ranges", "score", "servers", "slot_of", "slots_of",
]

DEFAULT_SLOTS: Final = 256  # S: fixed for the life of a cluster (a change moves every job)
DEFAULT_REPLICAS: Final = 2  # R: owners per slot; one of them may die with no fire late
MAX_SLOTS: Final = 65_536


class SlotError(ValueError):
    """An invalid slot count, replication factor or slot number."""

    def __init__(self, what: str, value: object, rule: str) -> None:
        self.what = what
        self.value = value
        super().__init__(f"invalid {what} {value!r}: {rule}")


def check_count(what: str, value: object, high: int | None = None) -> int:
    """``value`` if it is an int >= 1 (and <= ``high``), else SlotError: the one rule
    for S and R, here and in ``cluster.shard_settings``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 \
            or (high is not None and value > high):
        limit = "" if high is None else f" and <= {high}"
        raise SlotError(what, value, f"must be an int >= 1{limit}")
    return value


def _check_slot(slot: object, slots: int) -> int:
    if isinstance(slot, bool) or not isinstance(slot, int) or not 0 <= slot < slots:
        raise SlotError("slot", slot, f"must be an int in 0..{slots - 1}")
    return slot


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def slot_of(job_name: str, slots: int = DEFAULT_SLOTS) -> int:
    """The slot of a job: the same in every process, release and machine."""
    return _hash64(f"job:{job_name}") % check_count("slot count", slots, MAX_SLOTS)


def score(slot: int, worker_id: str) -> int:
    """A worker's weight for a slot; the highest R own it."""
    return _hash64(f"slot:{slot}|{worker_id}")


def _ranked(slot: int, worker_ids: Iterable[str], replicas: int) -> tuple[str, ...]:
    best = heapq.nsmallest(replicas, ((-score(slot, w), w) for w in set(worker_ids)))
    return tuple(w for _, w in best)


def owners(slot: int, workers: Iterable[str], replicas: int = DEFAULT_REPLICAS, *,
           slots: int = DEFAULT_SLOTS) -> tuple[str, ...]:
    """The owners of ``slot`` among ``workers`` (ids), best first: R of them, or every
    worker when there are R or fewer."""
    _check_slot(slot, check_count("slot count", slots, MAX_SLOTS))
    return _ranked(slot, workers, check_count("replication factor", replicas))


def servers(slot: int, workers: Iterable[WorkerInfo], selector: Mapping[str, str],
            replicas: int = DEFAULT_REPLICAS, *, slots: int = DEFAULT_SLOTS,
            ) -> tuple[str, ...]:
    """Who serves a job of ``slot`` with ``selector``: the R workers its selector admits
    of highest score, best first; the slot's owners when all of them match, matching
    workers outside them when not (see the module's docstring); () when none matches."""
    return owners(slot, (w.worker_id for w in workers if w.matches(selector)), replicas,
                  slots=slots)


def slots_of(worker: str, workers: Iterable[str], replicas: int = DEFAULT_REPLICAS, *,
             slots: int = DEFAULT_SLOTS) -> frozenset[int]:
    """The slots ``worker`` owns, were it one of ``workers`` (it counts in, listed or not,
    as in ``worker.locker.placement``: a worker that just started owns its share)."""
    return SlotTable.build([*workers, worker], replicas, slots=slots).slots_of(worker)


def ranges(slot_numbers: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """Slots as runs of neighbours, ``(first, stop)`` half open: one key range each, so
    that a worker watches its slots with as few watches as their layout allows."""
    runs: list[tuple[int, int]] = []
    for slot in sorted(set(slot_numbers)):
        if runs and runs[-1][1] == slot:
            runs[-1] = (runs[-1][0], slot + 1)
        else:
            runs.append((slot, slot + 1))
    return tuple(runs)


@dataclass(frozen=True, slots=True)
class SlotTable:
    """The owners of every slot for one fleet: computed once per change of the fleet,
    asked per job and per slot. S·W hashes: ~25 ms for 256 slots and 100 workers here,
    0.6 s for 4096; the wired worker should update it instead (a join scores only the
    newcomer, a leave re-ranks only the leaver's slots)."""

    slots: int
    replicas: int
    workers: tuple[str, ...]  # the fleet, sorted
    owners: tuple[tuple[str, ...], ...]  # slot -> its owners, best first

    @classmethod
    def build(cls, workers: Iterable[str], replicas: int = DEFAULT_REPLICAS, *,
              slots: int = DEFAULT_SLOTS) -> SlotTable:
        slots = check_count("slot count", slots, MAX_SLOTS)
        replicas = check_count("replication factor", replicas)
        fleet = sorted(set(workers))
        return cls(slots, replicas, tuple(fleet),
                   tuple(_ranked(s, fleet, replicas) for s in range(slots)))

    def slots_of(self, worker_id: str) -> frozenset[int]:
        return frozenset(s for s, held in enumerate(self.owners) if worker_id in held)

    def counts(self) -> dict[str, int]:
        """Slots owned per worker (every worker of the fleet, 0 included)."""
        counts = dict.fromkeys(self.workers, 0)
        for held in self.owners:
            for w in held:
                counts[w] += 1
        return counts

    def owns(self, worker_id: str, job_name: str) -> bool:
        """Does ``worker_id`` own the slot of ``job_name`` (labels aside)?"""
        return worker_id in self.owners[slot_of(job_name, self.slots)]

    def moved(self, other: SlotTable) -> frozenset[int]:
        """The slots whose set of owners differs in ``other`` (a later fleet's table)."""
        if (other.slots, other.replicas) != (self.slots, self.replicas):
            raise SlotError("table", other, "must have the same slot count and replicas")
        return frozenset(s for s, (a, b) in enumerate(zip(self.owners, other.owners))
                         if set(a) != set(b))
