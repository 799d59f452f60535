"""Rendezvous ranking: one preferred owner per fire, even spread, selectors, capacity."""

from __future__ import annotations

from collections import Counter

import pytest

from cluster.presence import WorkerInfo
from worker.locker.placement import claim_delay_s, rank_of


def workers(*specs: tuple[str, dict]) -> tuple[WorkerInfo, ...]:
    return tuple(WorkerInfo(worker_id=w, host="h", pid=1, labels=labels) for w, labels in specs)


FLEET = workers(("w1", {}), ("w2", {"gpu": "yes"}), ("w3", {}))


def ranks(fire_key: str, selector: dict, fleet=FLEET) -> dict[str, int | None]:
    return {w.worker_id: rank_of(w.worker_id, w.labels, fire_key, fleet, selector) for w in fleet}


def test_every_fire_has_exactly_one_preferred_owner_and_distinct_ranks():
    for i in range(500):
        r = ranks(f"job{i % 30}@{1_700_000_000_000 + i * 1000}#1", {})
        assert sorted(r.values()) == [0, 1, 2]


def test_preferred_owners_spread_evenly():
    owners = Counter()
    for job in range(30):
        for second in range(20):
            r = ranks(f"job{job}@{1_700_000_000_000 + second * 1000}#1", {})
            owners[next(w for w, rank in r.items() if rank == 0)] += 1
    shares = {w: n / 600 for w, n in owners.items()}
    assert set(shares) == {"w1", "w2", "w3"}
    assert all(0.25 <= s <= 0.42 for s in shares.values()), shares


def test_selector_excludes_workers_without_the_label():
    for i in range(50):
        r = ranks(f"gpu-job@{i}#1", {"gpu": "yes"})
        assert r == {"w1": None, "w2": 0, "w3": None}


def test_a_worker_not_yet_listed_still_ranks_itself():
    rank = rank_of("new", {}, "job@1#1", FLEET, {})
    assert rank is not None and 0 <= rank <= 3


def test_claim_delay_grows_with_rank_and_load_and_stops_at_capacity():
    assert claim_delay_s(0, running=5, capacity=10, step_s=0.05) == 0.0
    assert claim_delay_s(1, running=0, capacity=10, step_s=0.05) == 0.05
    assert claim_delay_s(2, running=0, capacity=10, step_s=0.05) == 0.10
    assert claim_delay_s(1, running=5, capacity=10, step_s=0.05) == pytest.approx(0.075)
    assert claim_delay_s(0, running=10, capacity=10, step_s=0.05) is None
    assert claim_delay_s(3, running=10, capacity=10, step_s=0.05) is None
