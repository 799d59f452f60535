"""`@every <duration>`: anchor + k * period, Go-style durations, pure integer arithmetic."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from cluster.cron import CronError, parse_schedule

ANCHOR = 1_750_000_000_123


@pytest.mark.parametrize(("expr", "period_ms"), [
    ("@every 1s", 1_000), ("@every 90s", 90_000), ("@every 1m30s", 90_000),
    ("@every 1.5h", 5_400_000), ("@every 2h45m", 9_900_000), ("@every 1500ms", 1_500),
    ("@every 1h0m0s", 3_600_000), ("@EVERY 10S", 10_000), ("@every   5m", 300_000),
])
def test_durations(expr: str, period_ms: int) -> None:
    schedule = parse_schedule(expr, anchor_ms=ANCHOR)
    assert schedule.preview(3, ANCHOR) == [ANCHOR + k * period_ms for k in (1, 2, 3)]


@pytest.mark.parametrize(("expr", "reason"), [
    ("@every", "needs a duration"),
    ("@every 500ms", "must be between 1s and 8784h"),
    ("@every 0s", "must be between 1s and 8784h"),
    ("@every 9000h", "must be between 1s and 8784h"),
    ("@every 5", "units h, m, s, ms"),
    ("@every 1d", "units h, m, s, ms"),
    ("@every 10us", "units h, m, s, ms"),
    ("@every -5s", "units h, m, s, ms"),
    ("@every 1s 2s", "units h, m, s, ms"),
    ("@every 1.0001s", "not whole milliseconds"),
])
def test_bad_durations(expr: str, reason: str) -> None:
    with pytest.raises(CronError) as info:
        parse_schedule(expr)
    assert reason in info.value.reason


def test_first_fire_is_one_period_after_the_anchor() -> None:
    schedule = parse_schedule("@every 1m", anchor_ms=ANCHOR)
    assert schedule.next_after(0) == ANCHOR + 60_000
    assert schedule.next_after(ANCHOR) == ANCHOR + 60_000
    assert schedule.next_after(ANCHOR + 60_000) == ANCHOR + 120_000
    assert schedule.next_after(ANCHOR + 59_999) == ANCHOR + 60_000


def test_without_anchor_the_epoch_is_the_anchor() -> None:
    assert parse_schedule("@every 1m").next_after(ANCHOR) == 1_750_000_020_000


def test_different_anchors_fire_at_different_phases() -> None:
    a = parse_schedule("@every 10s", anchor_ms=1_000).next_after(ANCHOR)
    b = parse_schedule("@every 10s", anchor_ms=4_000).next_after(ANCHOR)
    assert a is not None and b is not None and (b - a) % 10_000 == 3_000


def test_time_zone_does_not_move_intervals() -> None:
    utc = parse_schedule("@every 7s", anchor_ms=ANCHOR)
    tokyo = parse_schedule("@every 7s", timezone="Asia/Tokyo", anchor_ms=ANCHOR)
    assert utc.preview(5, ANCHOR + 12_345) == tokyo.preview(5, ANCHOR + 12_345)


def test_bad_zone_is_rejected_for_intervals_too() -> None:
    with pytest.raises(CronError):
        parse_schedule("@every 7s", timezone="Nowhere/Special")


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**41), st.integers(1_000, 86_400_000), st.integers(0, 2**42))
def test_next_is_the_first_grid_point_after_t(anchor: int, period: int, t: int) -> None:
    seconds = period // 1000
    schedule = parse_schedule(f"@every {seconds}s", anchor_ms=anchor)
    fire = schedule.next_after(t)
    assert fire is not None and fire > t
    k, rest = divmod(fire - anchor, seconds * 1000)
    assert rest == 0 and k >= 1
    assert k == 1 or fire - seconds * 1000 <= t
