"""Who should run a fire: rendezvous hashing over the live eligible workers.

Why: the original made every worker sleep a random 0-999 ms and race for the lock,
which added latency and, unseeded, did not even balance. Here every worker computes
the same ranking of the live workers for a fire ``(job, planned time)``; the first
claims at once, the others wait a backoff that grows with their rank and their load
and claim only if nobody has. Fires spread evenly (each worker is first for ~1/n of
them), and a dead first choice is covered by the second one a step later.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from cluster.presence import WorkerInfo


def _score(fire_key: bytes, worker_id: str) -> int:
    digest = hashlib.blake2b(fire_key + b"|" + worker_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rank_of(
    worker_id: str,
    labels: Mapping[str, str],
    fire_key: str,
    workers: Iterable[WorkerInfo],
    selector: Mapping[str, str],
) -> int | None:
    """This worker's rank (0 = preferred owner) among eligible workers, None if ineligible.

    A worker that is not (yet) in the list counts as eligible with its own score, so a
    worker that just started still claims its share.
    """
    if any(labels.get(k) != v for k, v in selector.items()):
        return None
    key = fire_key.encode()
    mine = _score(key, worker_id)
    rank = 0
    for worker in workers:
        if worker.worker_id == worker_id or not worker.matches(selector):
            continue
        if _score(key, worker.worker_id) > mine:
            rank += 1
    return rank


def first_of(fire_key: str, worker_id: str, workers: Iterable[WorkerInfo]) -> bool:
    """Is this worker the first of all live workers (whatever their labels) for the
    fire? For what exactly one worker must do about a fire that nobody can claim
    (count it). This worker counts in, listed or not."""
    key = fire_key.encode()
    mine = _score(key, worker_id)
    return all(w.worker_id == worker_id or _score(key, w.worker_id) < mine for w in workers)


def claim_delay_s(rank: int, running: int, capacity: int, *, step_s: float) -> float | None:
    """How long to wait before claiming; None when this worker must not claim at all.

    The preferred owner claims at once unless it is full. Others wait ``rank`` steps,
    stretched by up to 2x as their own load grows, so that an idle worker wins over a
    busy one when the owner is down.
    """
    if capacity > 0 and running >= capacity:
        return None
    if rank == 0:
        return 0.0
    load = running / capacity if capacity > 0 else 0.0
    return rank * step_s * (1.0 + load)
