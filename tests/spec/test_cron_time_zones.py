"""Cron in IANA time zones: the right UTC instants, DST gaps and overlaps, never local time."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from cronsim import CronSim
from hypothesis import given, settings, strategies as st

from cluster.cron import TimeZoneError, load_zone, parse_schedule
from cron_strategies import daily_expressions, plain_expressions

BERLIN = ZoneInfo("Europe/Berlin")


def at(zone: ZoneInfo, *parts: int, fold: int = 0) -> int:
    return int(datetime(*parts, tzinfo=zone, fold=fold).timestamp() * 1000)


def utc(*parts: int) -> int:
    return at(ZoneInfo("UTC"), *parts)


def berlin_fires(expr: str, after_ms: int, n: int) -> list[str]:
    times = parse_schedule(expr, timezone="Europe/Berlin").preview(n, after_ms)
    return [datetime.fromtimestamp(t / 1000, BERLIN).strftime("%d %H:%M%z") for t in times]


def test_wall_clock_of_the_zone_gives_the_utc_instant() -> None:
    tokyo = parse_schedule("0 9 * * *", timezone="Asia/Tokyo")
    assert tokyo.next_after(utc(2025, 6, 1)) == utc(2025, 6, 2, 0)  # 09:00 JST = 00:00 UTC
    new_york = parse_schedule("0 9 * * *", timezone="America/New_York")
    assert new_york.next_after(utc(2025, 7, 1)) == utc(2025, 7, 1, 13)  # EDT
    assert new_york.next_after(utc(2025, 1, 1)) == utc(2025, 1, 1, 14)  # EST
    kathmandu = parse_schedule("0 0 0 * * *", timezone="Asia/Kathmandu")  # +05:45
    assert kathmandu.next_after(utc(2025, 6, 1)) == utc(2025, 6, 1, 18, 15)


def test_machine_local_zone_is_never_used(monkeypatch: pytest.MonkeyPatch) -> None:
    def sample() -> list[int | None]:
        return [parse_schedule("0 9 * * *").next_after(utc(2025, 6, 1)),
                parse_schedule("0 9 * * *", timezone="Europe/Berlin").next_after(
                    utc(2025, 6, 1))]

    before = sample()
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    try:
        assert sample() == before == [utc(2025, 6, 1, 9), utc(2025, 6, 1, 7)]
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "localtime", "posixrules",
                                  "right/Europe/Berlin", "../etc/passwd", "/etc/localtime",
                                  "Europe"])
def test_unknown_or_local_zones_are_rejected(name: str) -> None:
    with pytest.raises(TimeZoneError):
        parse_schedule("* * * * *", timezone=name)


def test_utc_aliases_take_the_fast_path() -> None:
    assert load_zone("UTC") is None and load_zone("Etc/UTC") is None
    assert load_zone("Europe/Berlin") is BERLIN


# --------------------------------------------------------------------------- DST, Berlin
# Spring forward 2025-03-30: 02:00 CET -> 03:00 CEST (02:xx does not exist).
# Fall back 2025-10-26: 03:00 CEST -> 02:00 CET (02:xx happens twice).

SPRING_EVE = at(BERLIN, 2025, 3, 29, 12)
AUTUMN_EVE = at(BERLIN, 2025, 10, 25, 12)


def test_spring_gap_fires_once_when_the_clock_jumps() -> None:
    assert berlin_fires("30 2 * * *", SPRING_EVE, 3) == [
        "30 03:00+0200", "31 02:30+0200", "01 02:30+0200"]
    assert berlin_fires("*/20 2 * * *", SPRING_EVE, 2) == ["30 03:00+0200", "31 02:00+0200"]


def test_spring_gap_keeps_the_rhythm_of_every_hour_jobs() -> None:
    assert berlin_fires("*/20 * * * *", at(BERLIN, 2025, 3, 30, 1, 30), 4) == [
        "30 01:40+0100", "30 03:00+0200", "30 03:20+0200", "30 03:40+0200"]
    assert berlin_fires("30 * * * *", at(BERLIN, 2025, 3, 30, 0, 45), 3) == [
        "30 01:30+0100", "30 03:30+0200", "30 04:30+0200"]  # one real hour apart


def test_autumn_overlap_fires_fixed_times_once() -> None:
    assert berlin_fires("30 2 * * *", AUTUMN_EVE, 2) == ["26 02:30+0200", "27 02:30+0100"]
    assert berlin_fires("*/20 2 * * *", AUTUMN_EVE, 4) == [
        "26 02:00+0200", "26 02:20+0200", "26 02:40+0200", "27 02:00+0100"]
    # Seen from inside the second pass, the repeated hour does not fire again.
    second_pass = at(BERLIN, 2025, 10, 26, 2, 10, fold=1)
    assert berlin_fires("*/20 2 * * *", second_pass, 1) == ["27 02:00+0100"]


def test_autumn_overlap_repeats_every_hour_jobs() -> None:
    assert berlin_fires("*/20 * * * *", at(BERLIN, 2025, 10, 26, 1, 50), 8) == [
        "26 02:00+0200", "26 02:20+0200", "26 02:40+0200",
        "26 02:00+0100", "26 02:20+0100", "26 02:40+0100", "26 03:00+0100", "26 03:20+0100"]
    # From the end of the first pass, the next fire is the start of the second one.
    end_of_first_pass = at(BERLIN, 2025, 10, 26, 2, 50)
    assert berlin_fires("*/20 * * * *", end_of_first_pass, 1) == ["26 02:00+0100"]


LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # +10:30 <-> +11:00: a 30-minute shift
LH_SPRING = at(LORD_HOWE, 2026, 10, 3, 23)  # 02:00 -> 02:30 on 4 October
LH_AUTUMN = at(LORD_HOWE, 2026, 4, 4, 23)  # 02:00 -> 01:30 on 5 April


def _lord_howe(expr: str, after_ms: int, n: int) -> list[int]:
    return parse_schedule(expr, timezone="Australia/Lord_Howe").preview(n, after_ms)


def _gaps_min(times_ms: list[int]) -> list[int]:
    return [(b - a) // 60_000 for a, b in zip(times_ms, times_ms[1:], strict=False)]


@pytest.mark.parametrize("eve", [LH_SPRING, LH_AUTUMN], ids=["spring", "autumn"])
def test_lord_howe_half_hour_shift_gives_every_hour_jobs_a_90_minute_gap(eve: int) -> None:
    """The docstring's claim: a shift that is not a whole number of steps is not
    absorbed. `0 * * * *` keeps matching the wall clock: 02:00 does not exist in
    October; in April the repeated half hour 01:30-02:00 holds no :00. Either way one
    interval is 90 minutes, as croniter and cronsim answer too."""
    ours = _lord_howe("0 * * * *", eve, 5)
    assert _gaps_min(ours) == [60, 90, 60, 60]  # 00:00, 01:00, then 90 minutes
    it = croniter("0 * * * *", datetime.fromtimestamp(eve / 1000, LORD_HOWE))
    assert [int(it.get_next(float)) * 1000 for _ in range(5)] == ours
    sim = CronSim("0 * * * *", datetime.fromtimestamp(eve / 1000, LORD_HOWE))
    assert [int(next(sim).timestamp()) * 1000 for _ in range(5)] == ours


def test_lord_howe_half_past_every_hour_fires_30_minutes_apart_across_each_change() -> None:
    walls = lambda times: [  # noqa: E731
        datetime.fromtimestamp(t / 1000, LORD_HOWE).strftime("%H:%M%z") for t in times]
    spring = _lord_howe("30 * * * *", LH_SPRING, 5)
    assert walls(spring) == ["23:30+1030", "00:30+1030", "01:30+1030", "02:30+1100",
                             "03:30+1100"]
    assert _gaps_min(spring) == [60, 60, 30, 60]
    autumn = _lord_howe("30 * * * *", LH_AUTUMN, 5)  # 01:30 is shown twice: both fire
    assert walls(autumn) == ["23:30+1100", "00:30+1100", "01:30+1100", "01:30+1030",
                             "02:30+1030"]
    assert _gaps_min(autumn) == [60, 60, 30, 60]
    for eve, ours in ((LH_SPRING, spring), (LH_AUTUMN, autumn)):
        it = croniter("30 * * * *", datetime.fromtimestamp(eve / 1000, LORD_HOWE))
        assert [int(it.get_next(float)) * 1000 for _ in range(5)] == ours


def test_lord_howe_fixed_times_follow_the_gap_and_overlap_rules() -> None:
    # 02:15 is skipped in October: it fires once, when the clock jumps to 02:30.
    assert _lord_howe("15 2 * * *", LH_SPRING, 2) == [
        at(LORD_HOWE, 2026, 10, 4, 2, 30), at(LORD_HOWE, 2026, 10, 5, 2, 15)]
    # 01:45 is shown twice in April: it fires on its first occurrence only.
    assert _lord_howe("45 1 * * *", LH_AUTUMN, 2) == [
        at(LORD_HOWE, 2026, 4, 5, 1, 45), at(LORD_HOWE, 2026, 4, 6, 1, 45)]


def test_midnight_gap_in_santiago_fires_at_one_am() -> None:
    # 2025-09-07 00:00 -04 -> 01:00 -03 in America/Santiago: midnight does not exist.
    santiago = parse_schedule("0 0 * * *", timezone="America/Santiago")
    assert santiago.next_after(utc(2025, 9, 6, 12)) == utc(2025, 9, 7, 4)
    assert santiago.next_after(utc(2025, 9, 7, 4)) == utc(2025, 9, 8, 3)


# --------------------------------------------------------------------------- properties

_ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago",
          "Asia/Kolkata", "Pacific/Chatham"]
_TIMES = st.integers(utc(2000, 1, 1), utc(2060, 1, 1))


def _offset_s(zone: ZoneInfo, t_s: int) -> int:
    delta = datetime.fromtimestamp(t_s, zone).utcoffset()
    assert delta is not None
    return int(delta.total_seconds())


def _wall_matches(expr: str, zone: ZoneInfo, t_s: int) -> bool:
    local = t_s + _offset_s(zone, t_s)
    return parse_schedule(expr).next_after((local - 1) * 1000) == local * 1000


@settings(max_examples=150, deadline=None)
@given(plain_expressions(), st.sampled_from(_ZONES), _TIMES)
def test_zoned_fires_increase_and_match_the_wall_clock(case: tuple[str, bool], zone_name: str,
                                                       t_ms: int) -> None:
    expr = case[0]
    zone = ZoneInfo(zone_name)
    times = parse_schedule(expr, timezone=zone_name).preview(5, t_ms)
    assert all(a < b for a, b in zip([t_ms, *times], times, strict=False))
    for fire in times:
        fire_s = fire // 1000
        jumped = _offset_s(zone, fire_s - 1) != _offset_s(zone, fire_s)
        assert _wall_matches(expr, zone, fire_s) or jumped


@settings(max_examples=150, deadline=None)
@given(plain_expressions(), st.sampled_from(["Asia/Kolkata", "Asia/Kathmandu"]), _TIMES)
def test_zones_without_dst_agree_with_croniter(case: tuple[str, bool], zone_name: str,
                                               t_ms: int) -> None:
    expr, with_seconds = case
    zone = ZoneInfo(zone_name)
    t_s = t_ms // 1000
    try:
        start = datetime.fromtimestamp(t_s, zone)
        expected = int(croniter(expr, start, second_at_beginning=with_seconds)
                       .get_next(float)) * 1000
    except Exception:  # croniter: no date within its 50-year search
        expected = None
    assert parse_schedule(expr, timezone=zone_name).next_after(t_s * 1000) == expected


def _transitions(zone: ZoneInfo, year: int) -> list[int]:
    """Instants (s) in `year` where the zone's offset changes (daily scan + bisection)."""
    found = []
    start = utc(year, 1, 1) // 1000
    for day in range(366):
        lo, hi = start + day * 86_400, start + (day + 1) * 86_400
        if _offset_s(zone, lo) != _offset_s(zone, hi):
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if _offset_s(zone, mid) == _offset_s(zone, lo) else (lo, mid)
            found.append(hi)
    return found


_DST_ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago",
              "Pacific/Chatham", "America/St_Johns"]
_CHANGES = [(name, t) for name in _DST_ZONES for t in _transitions(ZoneInfo(name), 2025)]


def _every_hour(hour_field: str) -> bool:
    day = parse_schedule(f"0 {hour_field} * * *").preview(24, utc(2025, 1, 1) - 1)
    return day[-1] - day[0] == 23 * 3_600_000


def _shown_before(zone: ZoneInfo, u: int) -> bool:
    """Whether the wall time at instant u was already shown earlier (an overlap)."""
    local = u + _offset_s(zone, u)
    for k in range(1, 17):  # offsets of the last 4 hours
        earlier = local - _offset_s(zone, u - 900 * k)
        if earlier < u and earlier + _offset_s(zone, earlier) == local:
            return True
    return False


def _brute_force(expr: str, zone: ZoneInfo, start_s: int, end_s: int) -> list[int]:
    """The documented DST rules, applied minute by minute of real time."""
    elapsed = _every_hour(expr.split()[1])
    fires = set()
    for u in range(start_s - start_s % 60 + 60, end_s + 1, 60):
        if _wall_matches(expr, zone, u) and (elapsed or not _shown_before(zone, u)):
            fires.add(u)
    if not elapsed:
        for name, change in _CHANGES:
            before, after = _offset_s(zone, change - 1), _offset_s(zone, change)
            if name == zone.key and start_s < change <= end_s and after > before:
                skipped = range(change + before, change + after, 60)
                if any(parse_schedule(expr).next_after((w - 1) * 1000) == w * 1000
                       for w in skipped):
                    fires.add(change)
    return sorted(f * 1000 for f in fires)


@settings(max_examples=120, deadline=None)
@given(daily_expressions(), st.sampled_from(_CHANGES), st.integers(-3 * 3600, 0))
def test_dst_changes_follow_the_documented_rules(expr: str, change: tuple[str, int],
                                                 shift_s: int) -> None:
    zone = ZoneInfo(change[0])
    start_s, end_s = change[1] + shift_s, change[1] + 4 * 3600
    expected = _brute_force(expr, zone, start_s, end_s)
    got = [t for t in parse_schedule(expr, timezone=change[0]).preview(500, start_s * 1000)
           if t <= end_s * 1000]
    assert got == expected
