"""Cron field expressions in UTC: grammar, fields, macros, errors, and croniter as oracle."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from croniter import croniter
from hypothesis import given, settings, strategies as st

from cluster.cron import CronError, parse_schedule
from cron_strategies import plain_expressions


def ms(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=timezone.utc).timestamp() * 1000)


def utc(t_ms: int) -> datetime:
    return datetime.fromtimestamp(t_ms / 1000, timezone.utc).replace(tzinfo=None)


def fires(expr: str, after: int, n: int = 4) -> list[datetime]:
    return [utc(t) for t in parse_schedule(expr).preview(n, after)]


JUNE_1 = ms(2025, 6, 1)  # a Sunday


# --------------------------------------------------------------------------- fields


def test_five_fields_fire_on_whole_minutes() -> None:
    assert fires("*/15 * * * *", JUNE_1 + 1) == [
        datetime(2025, 6, 1, 0, 15), datetime(2025, 6, 1, 0, 30),
        datetime(2025, 6, 1, 0, 45), datetime(2025, 6, 1, 1, 0)]


def test_six_fields_put_seconds_first() -> None:
    assert fires("*/20 * * * * *", JUNE_1) == [
        datetime(2025, 6, 1, 0, 0, 20), datetime(2025, 6, 1, 0, 0, 40),
        datetime(2025, 6, 1, 0, 1, 0), datetime(2025, 6, 1, 0, 1, 20)]
    assert fires("30 0 12 * * *", JUNE_1, 2) == [
        datetime(2025, 6, 1, 12, 0, 30), datetime(2025, 6, 2, 12, 0, 30)]


def test_seven_fields_add_a_year() -> None:
    assert fires("0 0 12 1 1 * 2030,2032", JUNE_1) == [
        datetime(2030, 1, 1, 12), datetime(2032, 1, 1, 12)]


def test_next_after_is_strictly_after_even_within_the_same_millisecond() -> None:
    schedule = parse_schedule("* * * * * *")
    assert schedule.next_after(JUNE_1) == JUNE_1 + 1000
    assert schedule.next_after(JUNE_1 - 1) == JUNE_1
    assert schedule.next_after(JUNE_1 + 999) == JUNE_1 + 1000


@pytest.mark.parametrize(("macro", "expected"), [
    ("@yearly", datetime(2026, 1, 1)), ("@annually", datetime(2026, 1, 1)),
    ("@monthly", datetime(2025, 7, 1)), ("@weekly", datetime(2025, 6, 8)),
    ("@daily", datetime(2025, 6, 2)), ("@midnight", datetime(2025, 6, 2)),
    ("@hourly", datetime(2025, 6, 1, 1)), ("@DAILY", datetime(2025, 6, 2)),
])
def test_macros(macro: str, expected: datetime) -> None:
    assert fires(macro, JUNE_1, 1) == [expected]


def test_names_ranges_lists_and_steps() -> None:
    # Mon-Fri at 09:30, June 2025 starts on a Sunday.
    assert fires("30 9 * * mon-fri", JUNE_1, 2) == [
        datetime(2025, 6, 2, 9, 30), datetime(2025, 6, 3, 9, 30)]
    assert fires("0 0 1 jan,jul *", JUNE_1, 2) == [datetime(2025, 7, 1), datetime(2026, 1, 1)]
    assert fires("0 0 * * 7", JUNE_1, 1) == [datetime(2025, 6, 8)]  # 7 is Sunday too
    assert fires("0 0 * * 5-7", JUNE_1, 3) == [
        datetime(2025, 6, 6), datetime(2025, 6, 7), datetime(2025, 6, 8)]
    assert fires("0 0 * * 7-1", JUNE_1, 2) == [datetime(2025, 6, 2), datetime(2025, 6, 8)]
    assert fires("5/20 0 * * *", JUNE_1, 3) == [
        datetime(2025, 6, 1, 0, 5), datetime(2025, 6, 1, 0, 25), datetime(2025, 6, 1, 0, 45)]
    assert fires("0 8-10/2 * * *", JUNE_1, 2) == [
        datetime(2025, 6, 1, 8), datetime(2025, 6, 1, 10)]


def test_wrapping_ranges_continue_the_cycle() -> None:
    assert fires("0 22-1 * * *", JUNE_1 - 1, 4) == [
        datetime(2025, 6, 1, 0), datetime(2025, 6, 1, 1),
        datetime(2025, 6, 1, 22), datetime(2025, 6, 1, 23)]
    # Friday through Monday.
    assert [d.weekday() for d in fires("0 0 * * fri-mon", JUNE_1, 4)] == [0, 4, 5, 6]


def test_equal_range_is_one_value() -> None:
    """croniter reads `5-5` as the whole field; standard cron (and we) read 5."""
    assert fires("5-5 * * * *", JUNE_1, 2) == [
        datetime(2025, 6, 1, 0, 5), datetime(2025, 6, 1, 1, 5)]


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    # The 13th, or any Friday.
    assert fires("0 0 13 * 5", JUNE_1, 3) == [
        datetime(2025, 6, 6), datetime(2025, 6, 13), datetime(2025, 6, 20)]
    assert fires("0 0 ? * 5", JUNE_1, 1) == [datetime(2025, 6, 6)]


def test_last_day_nearest_weekday_and_nth_weekday() -> None:
    assert fires("0 0 L * *", JUNE_1, 3) == [
        datetime(2025, 6, 30), datetime(2025, 7, 31), datetime(2025, 8, 31)]
    assert fires("0 0 L 2 *", JUNE_1, 2) == [datetime(2026, 2, 28), datetime(2027, 2, 28)]
    assert fires("0 0 15W * *", JUNE_1, 2) == [datetime(2025, 6, 16), datetime(2025, 7, 15)]
    assert fires("0 0 LW * *", JUNE_1, 2) == [datetime(2025, 6, 30), datetime(2025, 7, 31)]
    assert fires("0 0 * * 1#2", JUNE_1, 2) == [datetime(2025, 6, 9), datetime(2025, 7, 14)]
    assert fires("0 0 * * fri#1", JUNE_1, 1) == [datetime(2025, 6, 6)]
    assert fires("0 0 * * 5L", JUNE_1, 2) == [datetime(2025, 6, 27), datetime(2025, 7, 25)]


def test_rare_day_patterns_are_found_far_ahead() -> None:
    # Feb 29 skips 2100; the fifth Monday of February needs a leap year starting on Monday.
    assert fires("0 0 29 2 *", ms(2097, 1, 1), 1) == [datetime(2104, 2, 29)]
    assert fires("0 0 * 2 1#5", JUNE_1, 2) == [datetime(2044, 2, 29), datetime(2072, 2, 29)]


# --------------------------------------------------------------------------- no next time


@pytest.mark.parametrize("expr", [
    "0 0 0 30 2 * *", "0 0 31 4,6,9,11 *", "0 0 0 1 1 * 2020", "0 0 0 29 2 * 2097-2099",
    "0 0 0 31 2 * 2030-2099",
])
def test_no_future_time_is_none(expr: str) -> None:
    assert parse_schedule(expr).next_after(JUNE_1) is None


def test_schedule_ends_after_its_last_year() -> None:
    schedule = parse_schedule("0 0 0 1 1 * 2026-2027")
    assert [utc(t) for t in schedule.preview(5, JUNE_1)] == [
        datetime(2026, 1, 1), datetime(2027, 1, 1)]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("expr", "reason"), [
    ("* * * *", "expected 5, 6 or 7 fields, got 4"),
    ("* * * * * * * *", "expected 5, 6 or 7 fields, got 8"),
    ("", "empty expression"),
    ("   ", "empty expression"),
    ("61 * * * *", "minute field '61': 61 is out of range 0-59"),
    ("0 24 * * *", "hour field '24': 24 is out of range 0-23"),
    ("0 0 24 * * *", "hour field '24'"),
    ("0 0 32 * *", "day-of-month field '32': 32 is out of range 1-31"),
    ("0 0 0 * *", "day-of-month field '0': 0 is out of range 1-31"),
    ("0 0 * 13 *", "month field '13'"),
    ("0 0 * foo *", "month field 'foo': unknown value 'foo'"),
    ("0 0 * * 8", "day-of-week field '8'"),
    ("*/0 * * * *", "minute field '*/0': step must be at least 1"),
    ("1,,2 * * * *", "minute field '1,,2': empty list item"),
    ("? * * * *", "'?' is only allowed in the day fields"),
    ("0 0 * * 1#6", "occurrence must be 1-5"),
    ("0 0 0 1 1 * 1969", "year field '1969': 1969 is out of range 1970-2099"),
    ("60 * * * * *", "second field '60'"),
    ("@reboot", "unknown macro '@reboot'"),
    ("1-2-3 * * * *", "minute field '1-2-3': cannot parse"),
    ("99999999999999999999 * * * *", "out of range"),
    ("x" * 2000, "longer than 1024 characters"),
])
def test_invalid_expressions_say_what_and_where(expr: str, reason: str) -> None:
    with pytest.raises(CronError, match=reason.replace("?", r"\?").replace("*", r"\*")) as info:
        parse_schedule(expr)
    assert reason in info.value.reason


def test_non_string_expression_is_a_cron_error() -> None:
    with pytest.raises(CronError, match="must be a string"):
        parse_schedule(5)  # type: ignore[arg-type]


def test_parsing_is_cached_by_expression_and_zone() -> None:
    assert parse_schedule("*/7 * * * *") is parse_schedule("*/7 * * * *")
    assert parse_schedule("*/7 * * * *") is not parse_schedule("*/7 * * * *",
                                                               timezone="Asia/Tokyo")


# --------------------------------------------------------------------------- croniter oracle

_TIMES = st.integers(ms(1995, 1, 1), ms(2090, 1, 1))


@settings(max_examples=300, deadline=None)
@given(plain_expressions(), _TIMES)
def test_next_after_agrees_with_croniter_in_utc(case: tuple[str, bool], t_ms: int) -> None:
    expr, with_seconds = case
    t_s = t_ms // 1000
    try:
        expected = int(croniter(expr, t_s, second_at_beginning=with_seconds)
                       .get_next(float)) * 1000
    except Exception:  # croniter: no date within its 50-year search
        expected = None
    assert parse_schedule(expr).next_after(t_s * 1000) == expected


@settings(max_examples=150, deadline=None)
@given(plain_expressions(), _TIMES)
def test_fire_times_strictly_increase(case: tuple[str, bool], t_ms: int) -> None:
    schedule = parse_schedule(case[0])
    times = schedule.preview(6, t_ms)
    assert all(a < b for a, b in zip([t_ms, *times], times, strict=False))
    assert all(t % 1000 == 0 for t in times)
    for previous, fire in zip([t_ms, *times], times, strict=False):
        # Nothing fires between two consecutive fire times.
        assert schedule.next_after(fire - 1) == fire
        assert schedule.next_after(previous) == fire
