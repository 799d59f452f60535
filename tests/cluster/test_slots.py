"""Slots and their owners (cluster.slots, issue 14): the hash is the documented one and
the same in every process, every worker owns its share, and a join or a leave moves
only the slots of the worker that came or went, about R·S/W of them."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.presence import WorkerInfo
from cluster.slots import (DEFAULT_REPLICAS, DEFAULT_SLOTS, MAX_SLOTS, SlotError, SlotTable,
                           owners, ranges, score, servers, slot_of, slots_of)

ROOT = Path(__file__).resolve().parents[2]
S, R = DEFAULT_SLOTS, DEFAULT_REPLICAS


def fleet(n: int, prefix: str = "worker-") -> list[str]:
    return [f"{prefix}{i:03d}" for i in range(n)]


def sd_of_count(slots: int, replicas: int, workers: int) -> float:
    """Standard deviation of one worker's slot count, Binomial(S, R/W)."""
    p = min(1.0, replicas / workers)
    return math.sqrt(slots * p * (1 - p))


# ---------------------------------------------------------------- the hash itself


def test_the_documented_formulas_are_the_code_s() -> None:
    def h(text: str) -> int:
        return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")

    design = " ".join((ROOT / "docs" / "DESIGN.md").read_text().split())
    assert 'blake2b("job:<name>") mod S' in design
    assert 'blake2b("slot:<slot>|<worker id>")' in design
    for name in ("backup-db", "a", "nightly.report_2"):
        assert slot_of(name) == h(f"job:{name}") % 256
        assert slot_of(name, 4096) == h(f"job:{name}") % 4096
    assert score(17, "w1") == h("slot:17|w1")
    by_doc = sorted(fleet(10), key=lambda w: -h(f"slot:17|{w}"))[:2]
    assert owners(17, fleet(10)) == tuple(by_doc)


def test_slots_are_pinned_a_changed_hash_would_move_every_job() -> None:
    # A change here is a migration of every cluster's keys, never a refactoring.
    assert [slot_of(n) for n in ("backup-db", "a", "nightly.report_2")] == [196, 106, 180]
    assert owners(0, fleet(10)) == ("worker-008", "worker-005")


def test_every_process_computes_the_same_slots_and_owners() -> None:
    """Python's hash() is salted per process; ours must not be."""
    names = [f"job-{i}" for i in range(200)]
    code = ("import json, sys; from cluster.slots import slot_of, SlotTable; "
            "names = json.loads(sys.argv[1]); "
            "t = SlotTable.build([f'w{i}' for i in range(7)]); "
            "print(json.dumps([[slot_of(n) for n in names], [list(o) for o in t.owners]]))")
    here = [[slot_of(n) for n in names],
            [list(o) for o in SlotTable.build([f"w{i}" for i in range(7)]).owners]]
    for seed in ("1", "2", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed,
               "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
        out = subprocess.run([sys.executable, "-c", code, json.dumps(names)], env=env,
                             capture_output=True, text=True, check=True, timeout=60).stdout
        assert json.loads(out) == here, seed


def test_names_spread_evenly_over_the_slots() -> None:
    counts = [0] * S
    n = 50_000
    for i in range(n):
        counts[slot_of(f"job-{i:06d}")] += 1
    mean = n / S
    sd = math.sqrt(n * (1 / S) * (1 - 1 / S))
    assert all(abs(c - mean) <= 5 * sd for c in counts), (min(counts), max(counts))
    # chi-square with S - 1 = 255 degrees of freedom: mean 255, sd ~22.6
    chi2 = sum((c - mean) ** 2 / mean for c in counts)
    assert 255 - 5 * 22.6 < chi2 < 255 + 5 * 22.6, chi2


# ---------------------------------------------------------------- balance


@pytest.mark.parametrize("replicas", [1, 2, 3])
def test_every_worker_owns_about_r_s_over_w_slots(replicas: int) -> None:
    """For W = 2..100: exactly R owners per slot (R·S places in all), and each worker's
    count within 5 standard deviations of R·S/W (a Binomial(S, R/W) count)."""
    for w in range(2, 101):
        table = SlotTable.build(fleet(w), replicas)
        counts = table.counts()
        assert len(counts) == w
        assert all(len(set(held)) == min(replicas, w) for held in table.owners)
        assert sum(counts.values()) == min(replicas, w) * S
        mean = min(replicas, w) * S / w
        slack = 5 * sd_of_count(S, replicas, w) + 1
        assert all(abs(c - mean) <= slack for c in counts.values()), (w, sorted(counts.values()))


def test_the_counts_vary_as_random_draws_do_not_more() -> None:
    """A hash that ignored the slot or the worker would pile slots on a few workers: the
    spread of the counts over 100 workers is that of independent draws, within 2x."""
    for slots in (256, 4096):
        counts = list(SlotTable.build(fleet(100), slots=slots).counts().values())
        mean = sum(counts) / len(counts)
        variance = sum((c - mean) ** 2 for c in counts) / (len(counts) - 1)
        expected = sd_of_count(slots, R, 100) ** 2
        assert 0.5 * expected < variance < 2 * expected, (slots, variance, expected)


def test_a_larger_slot_count_evens_out_a_large_fleet() -> None:
    counts = SlotTable.build(fleet(100), slots=4096).counts().values()
    assert max(counts) <= 1.5 * (R * 4096 / 100)
    assert min(counts) >= 0.5 * (R * 4096 / 100)


@pytest.mark.parametrize("w", [1, 2, 3])
def test_r_at_least_w_means_every_worker_owns_every_slot(w: int) -> None:
    for replicas in range(w, 5):
        table = SlotTable.build(fleet(w), replicas)
        assert all(set(held) == set(fleet(w)) for held in table.owners)
        assert all(slots_of(x, fleet(w), replicas) == frozenset(range(S)) for x in fleet(w))


def test_slots_of_counts_the_worker_in_listed_or_not() -> None:
    table = SlotTable.build(fleet(5))
    for worker in fleet(5):
        assert slots_of(worker, fleet(5)) == table.slots_of(worker)
        others = [w for w in fleet(5) if w != worker]
        assert slots_of(worker, others) == table.slots_of(worker)
    assert slots_of("worker-004", fleet(5)) | slots_of("worker-000", fleet(5)) <= set(range(S))


# ---------------------------------------------------------------- minimal movement


worker_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)


@settings(max_examples=40, deadline=None)
@given(st.sets(worker_ids, min_size=2, max_size=30), worker_ids, st.integers(1, 4))
def test_a_join_moves_only_slots_the_joiner_takes(ids, joiner, replicas) -> None:
    ids.discard(joiner)
    before = SlotTable.build(ids, replicas, slots=64)
    after = SlotTable.build([*ids, joiner], replicas, slots=64)
    for old, new in zip(before.owners, after.owners):
        if joiner not in new:
            assert new == old
        else:  # it took one place at most, and nobody else changed
            assert set(new) - {joiner} <= set(old)
            assert len(set(old) - set(new)) <= 1
    assert before.moved(after) == after.slots_of(joiner)


@settings(max_examples=40, deadline=None)
@given(st.sets(worker_ids, min_size=3, max_size=30), st.integers(1, 4), st.data())
def test_a_leave_moves_only_slots_the_leaver_held(ids, replicas, data) -> None:
    leaver = data.draw(st.sampled_from(sorted(ids)))
    before = SlotTable.build(ids, replicas, slots=64)
    after = SlotTable.build(ids - {leaver}, replicas, slots=64)
    for old, new in zip(before.owners, after.owners):
        if leaver not in old:
            assert new == old
        else:  # the others stay; the next in rank takes its place
            assert set(old) - {leaver} <= set(new)
            assert leaver not in new
    assert before.moved(after) == before.slots_of(leaver)


@pytest.mark.parametrize("w", [2, 4, 8, 16, 50, 100])
def test_a_join_or_a_leave_moves_about_r_s_over_w_slots(w: int) -> None:
    """W -> W+1 moves the joiner's R·S/(W+1) slots; W -> W-1 the leaver's R·S/W (each
    within 5 standard deviations); R >= W + 1 moves every slot (its owner set grows)."""
    base = SlotTable.build(fleet(w))
    joined = SlotTable.build(fleet(w + 1))
    moved = len(base.moved(joined))
    mean = min(R, w + 1) * S / (w + 1) if w + 1 > R else S
    assert abs(moved - mean) <= 5 * sd_of_count(S, R, w + 1) + 1, (w, moved, mean)
    left = SlotTable.build(fleet(w)[1:])
    assert len(base.moved(left)) == len(base.slots_of(fleet(w)[0]))


# ---------------------------------------------------------------- selectors


def info(worker_id: str, **labels: str) -> WorkerInfo:
    return WorkerInfo(worker_id, host="h", pid=1, labels=labels)


def test_a_job_without_selector_is_served_by_its_slot_s_owners() -> None:
    workers = [info(w) for w in fleet(9)]
    for slot in range(S):
        assert servers(slot, workers, {}) == owners(slot, fleet(9))


def test_a_selector_no_owner_matches_is_served_by_the_best_matching_workers() -> None:
    workers = [info(w, zone="a" if i % 3 else "b") for i, w in enumerate(fleet(9))]
    zone_b = [w.worker_id for w in workers if w.labels["zone"] == "b"]
    seen_outside = 0
    for slot in range(S):
        own = owners(slot, fleet(9))
        served = servers(slot, workers, {"zone": "b"})
        assert served == owners(slot, zone_b)  # the rendezvous order, non-matching skipped
        assert len(served) == R
        assert [w for w in own if w in zone_b] == [w for w in served if w in own]
        seen_outside += not set(served) & set(own)
    assert seen_outside > 0  # the case the rule is for did occur


def test_a_selector_nobody_matches_is_served_by_nobody() -> None:
    assert servers(3, [info(w) for w in fleet(4)], {"gpu": "yes"}) == ()
    assert servers(3, [info("w1", gpu="yes"), info("w2")], {"gpu": "yes"}) == ("w1",)


# ---------------------------------------------------------------- ranges and errors


def test_ranges_join_neighbouring_slots() -> None:
    assert ranges([]) == ()
    assert ranges([5, 1, 2, 3, 9, 10, 3]) == ((1, 4), (5, 6), (9, 11))
    assert ranges(range(S)) == ((0, S),)


@pytest.mark.parametrize(("call", "match"), [
    (lambda: slot_of("a", 0), "slot count 0"),
    (lambda: slot_of("a", MAX_SLOTS + 1), "slot count"),
    (lambda: slot_of("a", True), "slot count"),
    (lambda: owners(S, fleet(3)), "slot 256"),
    (lambda: owners(-1, fleet(3)), "slot -1"),
    (lambda: owners(0, fleet(3), 0), "replication factor 0"),
    (lambda: SlotTable.build(fleet(3), 2, slots=16).moved(SlotTable.build(fleet(3), 1, slots=16)),
     "same slot count"),
])
def test_invalid_counts_and_slots_are_refused(call, match) -> None:
    with pytest.raises(SlotError, match=match):
        call()


def test_an_empty_fleet_owns_nothing() -> None:
    table = SlotTable.build([])
    assert table.owners == ((),) * S and table.counts() == {}
    assert not table.owns("w1", "backup-db")
