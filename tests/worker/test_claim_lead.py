"""The adaptive claim lead under a mock clock: it grows with slow claims, is bounded,
and decays once claims are fast again (``worker.claim_lead``)."""

from __future__ import annotations

import trio
import trio.testing
import pytest

from cluster.spec import JobSpec
from cluster.store import RunTrigger
from worker.claim_lead import MARGIN_MS, MAX_LEAD_S, WINDOW_S, ClaimLead
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
