"""The adaptive claim lead under a mock clock: it grows with slow claims, is bounded,
and decays once claims are fast again (``worker.claim_lead``)."""

from __future__ import annotations

import math
import random

import trio
import trio.testing
import pytest

from cluster.spec import JobSpec
from cluster.store import RunTrigger
from worker import claim_lead
from worker.claim_lead import MARGIN_MS, MAX_LEAD_S, MAX_SAMPLES, WINDOW_S, ClaimLead
from worker.clock import TrioWallClock
from worker.messages import Fire

T0 = 1_700_000_000_000


@pytest.fixture
def autojump_clock():
    return trio.testing.MockClock(autojump_threshold=0)


def fire(concurrency: str, trigger: RunTrigger, fired_ms: int) -> Fire:
    spec = JobSpec.from_json({"name": "j", "command": "true", "cronExpr": "* * * * * *",
                              "concurrency": concurrency})
    return Fire(spec, fired_ms + 200, fired_ms, trigger, "r1")


async def claims_for(lead: ClaimLead, seconds: int, took_ms: int, per_s: int = 5) -> None:
    """``per_s`` claims a second, each answered ``took_ms`` after its hand-over."""
    for _ in range(seconds * per_s):
        await trio.sleep(1 / per_s)
        lead.observed(took_ms)


async def test_fast_claims_keep_the_configured_lead(autojump_clock):
    lead = ClaimLead(TrioWallClock(T0), 0.2)
    assert lead.lead_ms() == 200
    await claims_for(lead, 5, 20)  # etcd answers in 20 ms: 120 ms would do, 200 stays
    assert lead.lead_ms() == 200


async def test_slow_claims_grow_the_lead_bounded_and_it_decays_when_fast_again(autojump_clock):
    clock = TrioWallClock(T0)
    lead = ClaimLead(clock, 0.2)
    await claims_for(lead, 3, 230)  # etcd 200 ms slower
    assert lead.lead_ms() == 350  # 230 + the margin, rounded up to 50 ms
    assert lead.lead_ms() >= 230 + MARGIN_MS
    await claims_for(lead, 3, 5_000)  # far slower: the lead stops at the cap
    assert lead.lead_ms() == round(MAX_LEAD_S * 1000)
    # Fast again: the slow ones age out of the window, and the lead is back.
    await claims_for(lead, round(WINDOW_S) - 1, 20)
    assert lead.lead_ms() == round(MAX_LEAD_S * 1000)  # still within the window
    await claims_for(lead, 2, 20)
    assert lead.lead_ms() == 200
    # No claim at all for a while (no allow job due) decays as well.
    await claims_for(lead, 2, 600)
    assert lead.lead_ms() == 700
    await trio.sleep(WINDOW_S + 0.1)
    assert lead.lead_ms() == 200


async def test_a_rare_slow_claim_does_not_move_it_many_do(autojump_clock):
    lead = ClaimLead(TrioWallClock(T0), 0.2)
    for i in range(100):  # 2 in 100 slow: below the p95
        await trio.sleep(0.05)
        lead.observed(800 if i % 50 == 0 else 20)
    assert lead.lead_ms() == 200
    for _ in range(10):  # 12 in 110 slow: above it
        await trio.sleep(0.05)
        lead.observed(800)
    assert lead.lead_ms() == 900


async def test_only_scheduled_allow_claims_count_and_a_zero_lead_stays_zero(autojump_clock):
    clock = TrioWallClock(T0)
    lead = ClaimLead(clock, 0.2)
    await trio.sleep(0.5)
    now = clock.now_ms()
    for f in (fire("forbid", RunTrigger.SCHEDULE, now - 600),  # judged at its time
              fire("allow", RunTrigger.MANUAL, now - 600),  # no lead: due at once
              fire("allow", RunTrigger.RETRY, now - 600)):
        lead.claimed(f)
        lead.ready(f)
    assert lead.lead_ms() == 200
    backup = fire("allow", RunTrigger.SCHEDULE, now - 900)
    lead.ready(backup)  # a backup's claim (never ``claimed``): it waited for its rank
    assert lead.lead_ms() == 200
    first = fire("allow", RunTrigger.SCHEDULE, now - 330)
    lead.claimed(first)
    assert lead.lead_ms() == 200  # claimed, not yet marked
    lead.ready(first)
    assert lead.lead_ms() == 450  # 330 from its hand-over to its mark, + 100, rounded up
    lead.ready(first)  # counted once
    assert lead.lead_ms() == 450
    off = ClaimLead(clock, 0.0)  # --claim-lead-s 0: claim at the fire time, always
    await claims_for(off, 2, 900)
    assert off.lead_ms() == 0


async def test_a_fire_handed_over_ahead_of_its_due_time_counts_from_it(autojump_clock):
    """A window hands fires over up to a second before they are due (``scheduler.plan``:
    a thin window reaches further): a run marked before its due time (its time less the
    lead) counts 0 ms, one marked after it counts from it; never from its hand-over."""
    clock = TrioWallClock(T0)
    lead = ClaimLead(clock, 0.2)
    await trio.sleep(2)
    now = clock.now_ms()
    for i in range(20):  # handed over 1.1 s ago for 200 ms from now: slack, not slowness
        early = Fire(fire("allow", RunTrigger.SCHEDULE, 0).spec, now + 200, now - 1100,
                     RunTrigger.SCHEDULE, f"early{i}")
        lead.claimed(early)
        lead.ready(early)
    assert lead.lead_ms() == 200  # from their hand-over: 1,100 ms, the cap (1 s)
    # Handed over 1 s before it was due, marked 330 ms after its due time (now - 330):
    # counted from its due time, not 1,330 ms from its hand-over.
    lead = ClaimLead(clock, 0.2)
    late = Fire(fire("allow", RunTrigger.SCHEDULE, 0).spec, now - 130, now - 1330,
                RunTrigger.SCHEDULE, "late")
    lead.claimed(late)
    lead.ready(late)
    assert lead.lead_ms() == 450  # 330 + 100, rounded up to 50 ms


async def test_backups_round_trips_grow_the_lead_of_a_worker_that_won_no_claim(autojump_clock):
    """A worker that won no first choice since etcd turned slow still learns it, from its
    backups' checks: two round trips (the claim, the mark) plus the margin."""
    lead = ClaimLead(TrioWallClock(T0), 0.2)
    await claims_for(lead, 9, 20)  # 45 fast fires of its own, before
    for _ in range(50):
        await trio.sleep(0.01)
        lead.round_trip(5, 1)  # fast transactions: nothing changes
    assert lead.lead_ms() == 200
    lead.round_trip(205, 5)  # one check of five fires, 200 ms slower
    assert lead.lead_ms() == 2 * 205 + MARGIN_MS + 40  # rounded up to 50 ms: 550
    lead.round_trip(3_000, 5)  # etcd failing, not slow: the retries' business
    assert lead.lead_ms() == 550
    await trio.sleep(WINDOW_S + 0.1)  # aged out: back to the configured lead
    assert lead.lead_ms() == 200


class StepClock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.ms = T0

    def now_ms(self) -> int:
        return self.ms


def reference_lead_ms(configured_ms: int, samples: list[tuple[int, int]],
                      trips: list[tuple[int, int]], now_ms: int) -> int:
    """The lead as the sort of the whole window gives it (the code before issue 14)."""
    def p95(items: list[tuple[int, int]]) -> int:
        took = sorted(t for at, t in items[-MAX_SAMPLES:] if at >= now_ms - WINDOW_S * 1000)
        return took[min(len(took) - 1, math.ceil(0.95 * len(took)) - 1)] if took else 0
    recent = [x for x in samples[-MAX_SAMPLES:] + trips[-MAX_SAMPLES:]
              if x[0] >= now_ms - WINDOW_S * 1000]
    if not recent:
        return configured_ms
    wanted = math.ceil((max(p95(samples), 2 * p95(trips)) + MARGIN_MS) / 50) * 50
    return max(configured_ms, min(wanted, round(MAX_LEAD_S * 1000)))


@pytest.mark.parametrize("configured_s", [0.2, 0.25, 0.12, 0.05, 1.5])
def test_the_counted_fast_path_gives_what_the_sort_gives_and_sorts_only_when_slow(
        configured_s, monkeypatch):
    """Regression (issue 14, perf-baseline-14 item 5): ``lead_ms`` sorted the whole window
    after each claim. Now a count of the samples above the fast bound answers while
    claims are fast; the lead must stay exactly the sort's, through samples around the
    bound, a full window's evictions and aging out, and the sort must not run while
    fast."""
    sorts = []
    real = claim_lead._Window.near_worst
    monkeypatch.setattr(claim_lead._Window, "near_worst",
                        lambda self: sorts.append(1) or real(self))
    rng = random.Random(configured_s)
    clock = StepClock()
    configured_ms = round(configured_s * 1000)
    lead = ClaimLead(clock, configured_s)
    samples: list[tuple[int, int]] = []
    trips: list[tuple[int, int]] = []
    bound = configured_ms // 50 * 50 - MARGIN_MS
    leads = set()
    for phase in range(12):
        slow_share = (0.0, 0.03, 0.06, 0.2)[phase % 4]
        for _ in range(rng.randrange(50, 400)):
            clock.ms += rng.choice((1, 10, 40, 400))
            took = bound + rng.choice((1, 30, 300)) if rng.random() < slow_share \
                else max(0, bound - rng.choice((0, 0, 5, 200)))
            if rng.random() < 0.5:
                lead.observed(took)
                samples.append((clock.ms, took))
            else:
                fires = rng.choice((1, 1, 3, 40))
                lead.round_trip(took // 2, fires)
                trips.extend([(clock.ms, took // 2)] * min(fires, MAX_SAMPLES))
            before = len(sorts)
            got = lead.lead_ms()
            assert got == reference_lead_ms(configured_ms, samples, trips, clock.ms)
            if got == configured_ms and configured_ms < round(MAX_LEAD_S * 1000) \
                    and bound >= 0:
                assert len(sorts) == before  # fast: answered by the counts
            leads.add(got)
    if bound >= 0:  # a lead under the margin is never the configured one with samples
        assert configured_ms in leads
    if configured_ms < round(MAX_LEAD_S * 1000):
        assert len(leads) > 1 and sorts  # the slow phases did move it, by a sort


async def won(lead: ClaimLead, seconds: float, per_s: int, took_ms: int | None = None) -> None:
    """``per_s`` first-choice claims of scheduled ``allow`` fires a second, each ready
    ``took_ms`` after its hand-over (None: not told)."""
    for _ in range(round(seconds * per_s)):
        await trio.sleep(1 / per_s)
        lead.claimed(fire("allow", RunTrigger.SCHEDULE, TrioWallClock(T0).now_ms()))
        if took_ms is not None:
            lead.observed(took_ms)


async def test_the_lead_holds_at_most_half_the_capacity_ahead(autojump_clock):
    lead = ClaimLead(TrioWallClock(T0), 0.2, capacity=64)
    await won(lead, 3, 100)  # 100 a second: 200 ms holds 20, within 32
    assert lead.lead_ms() == 200
    await won(lead, 3, 250)  # 32 / 250 = 128 ms, down to the step
    assert lead.lead_ms() == 100
    await won(lead, 3, 250, took_ms=600)  # and slow claims do not make it grow
    assert lead.lead_ms() == 100
    await won(lead, 3, 2000)  # never below the floor
    assert lead.lead_ms() == claim_lead.MIN_LEAD_MS
    await trio.sleep(claim_lead.RATE_WINDOW_S + 0.1)  # no claims: slow etcd leads again
    assert lead.lead_ms() == 600 + MARGIN_MS  # 600 + the margin, a whole step


async def test_no_capacity_no_cap_and_a_lead_of_zero_stays_zero(autojump_clock):
    uncapped = ClaimLead(TrioWallClock(T0), 0.2)
    off = ClaimLead(TrioWallClock(T0), 0.0, capacity=64)
    for lead in (uncapped, off):
        await won(lead, 2, 1000)
    assert uncapped.lead_ms() == 200 and off.lead_ms() == 0
