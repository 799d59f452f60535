"""The plain words of a schedule (cluster.cron.describe) and that they agree with the
fires our evaluator computes.

The table fixes the exact sentences; the properties check, for random valid expressions
(every field count, macros, `@every`, names, `L`, `W`, `#`), that a description is made,
names the zone when it is not UTC, and that what it claims about spacing, clock times,
weekdays and months holds for the next fires of the same expression.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone as dt_timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cluster.cron import CronError, describe, parse_schedule

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z

TABLE = [
    # 6 fields: seconds first
    ("*/5 * * * * *", "UTC", "every 5 seconds"),
    ("* * * * * *", "UTC", "every second"),
    ("*/20 * * * * *", "UTC", "every 20 seconds"),
    ("*/7 * * * * *", "UTC", "at every 7th second from 0 through 56 of every minute"),
    ("10-20 * * * * *", "UTC", "at seconds 10 through 20 of every minute"),
    ("15 30 * * * *", "UTC", "every hour at minute 30, second 15"),
    ("*/5 0 * * * *", "UTC", "every 5 seconds, during minute 0"),
    ("5/15 * 9 * * *", "UTC",
     "at seconds 5, 20, 35 and 50, every minute, between 09:00 and 09:59"),
    ("*/5 * * * * *", "Asia/Kolkata", "every 5 seconds, Asia/Kolkata"),
    # 5 fields
    ("30 2 * * *", "Europe/Berlin", "at 02:30 every day, Europe/Berlin"),
    ("* * * * *", "UTC", "every minute"),
    ("*/15 * * * *", "UTC", "every 15 minutes"),
    ("5/15 * * * *", "UTC", "every 15 minutes, starting at minute 5"),
    ("0 * * * *", "UTC", "every hour"),
    ("30 * * * *", "UTC", "every hour at minute 30"),
    ("5-10 * * * *", "UTC", "every hour at minutes 5 through 10"),
    ("0 */2 * * *", "UTC", "every 2 hours"),
    ("30 */2 * * *", "UTC", "every 2 hours, starting at 00:30"),
    ("0 1/6 * * *", "UTC", "every 6 hours, starting at 01:00"),
    ("0 9,17 * * *", "UTC", "at 09:00 and 17:00 every day"),
    ("0 22-2 * * *", "UTC", "at 00:00, 01:00, 02:00, 22:00 and 23:00 every day"),
    ("*/10 9-17 * * *", "UTC", "every 10 minutes, between 09:00 and 17:59"),
    ("0,30 9-17 * * 1-5", "UTC",
     "every 30 minutes, between 09:00 and 17:59 on Monday through Friday"),
    ("0,20 9-17 * * *", "UTC", "at minutes 0 and 20, between 09:00 and 17:59"),
    ("0 9 * * 1-5", "America/New_York", "at 09:00 on Monday through Friday, America/New_York"),
    ("0 12 * * sat,sun", "UTC", "at 12:00 on Saturday and Sunday"),
    ("0 12 * * fri-mon", "UTC", "at 12:00 on Monday, Friday, Saturday and Sunday"),
    ("0 12 * * tue-sun", "UTC", "at 12:00 on Tuesday through Sunday"),
    ("0 0 * * MON,WED,FRI", "UTC", "at 00:00 on Monday, Wednesday and Friday"),
    ("0 0 * * 7", "UTC", "at 00:00 on Sunday"),
    ("0 0 ? * mon", "UTC", "at 00:00 on Monday"),
    ("0 0 1 * *", "UTC", "at 00:00 on day 1 of every month"),
    ("0 0 1,15 * 1", "UTC", "at 00:00 on days 1 and 15 of the month or on Monday"),
    ("0 0 * jan-mar *", "UTC", "at 00:00 every day in January through March"),
    ("0 0 * */3 *", "UTC", "at 00:00 every day in January, April, July and October"),
    ("0 */2 1-7 * *", "UTC", "every 2 hours on days 1 through 7 of every month"),
    ("0 0 30 2 *", "UTC", "at 00:00 on day 30 of February"),
    # L, W, #
    ("0 0 L * *", "UTC", "at 00:00 on the last day of every month"),
    ("0 0 L,1 * *", "UTC", "at 00:00 on day 1 and the last day of every month"),
    ("0 0 LW * *", "UTC", "at 00:00 on the last weekday of every month"),
    ("0 0 15W * *", "UTC", "at 00:00 on the weekday nearest day 15 of every month"),
    ("0 0 * * 5L", "UTC", "at 00:00 on the last Friday of the month"),
    ("0 0 * * 2#2", "UTC", "at 00:00 on the 2nd Tuesday of the month"),
    ("0 0 * * 1#1,1#3", "UTC", "at 00:00 on the 1st Monday and the 3rd Monday of the month"),
    ("0 0 * 6 5L", "UTC", "at 00:00 on the last Friday of June"),
    # 7 fields: year last
    ("0 0 0 1 1 * 2030", "UTC", "at 00:00 on day 1 of January in 2030"),
    ("0 0 0 1 1 * 2025-2030", "UTC", "at 00:00 on day 1 of January in 2025 through 2030"),
    ("0 0 9 * * * 2025,2027", "UTC", "at 09:00 every day in 2025 and 2027"),
    ("0 30 9 * * 1-5 *", "UTC", "at 09:30 on Monday through Friday"),
    ("0 0 0 * * * 1970-2099", "UTC", "at 00:00 every day"),
    # macros and @every
    ("@yearly", "UTC", "at 00:00 on day 1 of January"),
    ("@monthly", "UTC", "at 00:00 on day 1 of every month"),
    ("@weekly", "UTC", "at 00:00 on Sunday"),
    ("@daily", "Europe/Berlin", "at 00:00 every day, Europe/Berlin"),
    ("@hourly", "UTC", "every hour"),
    ("@every 1m30s", "UTC", "every 1 m 30 s"),
    ("@every 5s", "UTC", "every 5 s"),
    ("@every 1.5h", "UTC", "every 1 h 30 m"),
    ("@every 1.5s", "Europe/Berlin", "every 1 s 500 ms"),  # an interval has no zone
]


@pytest.mark.parametrize(("expr", "tz", "words"), TABLE)
def test_describe_table(expr: str, tz: str, words: str) -> None:
    assert describe(expr, tz) == words


def test_describe_raises_the_parse_error() -> None:
    with pytest.raises(CronError, match="minute field '61'"):
        describe("61 * * * *")


# --------------------------------------------------------------------------- random


def _item(field: str) -> st.SearchStrategy[str]:
    lo, hi = {"second": (0, 59), "minute": (0, 59), "hour": (0, 23), "dom": (1, 31),
              "month": (1, 12), "dow": (0, 7), "year": (2026, 2099)}[field]
    value = st.integers(lo, hi).map(str)
    ranged = st.tuples(st.integers(lo, hi), st.integers(lo, hi)).map(lambda t: f"{t[0]}-{t[1]}")
    step = st.tuples(st.sampled_from(["*", str(lo)]), st.integers(1, hi - lo + 1)).map(
        lambda t: f"{t[0]}/{t[1]}")
    options = [st.just("*"), value, ranged, step]
    if field == "month":
        options.append(st.sampled_from(["jan", "mar-may", "nov-feb", "JUN"]))
    if field == "dow":
        options += [st.sampled_from(["mon-fri", "sat,sun", "fri-mon", "?"]),
                    st.tuples(st.integers(0, 7), st.integers(1, 5)).map(lambda t: f"{t[0]}#{t[1]}"),
                    st.integers(0, 7).map(lambda d: f"{d}L")]
    if field == "dom":
        options += [st.sampled_from(["L", "LW", "?", "15-L"]),
                    st.integers(1, 31).map(lambda d: f"{d}W")]
    return st.one_of(options)


@st.composite
def expressions(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["5", "6", "7", "macro", "every"]))
    if kind == "macro":
        return draw(st.sampled_from(["@yearly", "@annually", "@monthly", "@weekly", "@daily",
                                     "@midnight", "@hourly"]))
    if kind == "every":
        return f"@every {draw(st.integers(1, 100_000))}s"
    fields = ["minute", "hour", "dom", "month", "dow"]
    if kind != "5":
        fields.insert(0, "second")
    if kind == "7":
        fields.append("year")
    items = []
    for field in fields:
        listed = draw(st.lists(_item(field), min_size=1, max_size=3))
        items.append(",".join(listed))
    return " ".join(items)


ZONES = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata",
                         "Australia/Lord_Howe"])


def _parsed(expr: str, tz: str):
    try:
        return parse_schedule(expr, timezone=tz, anchor_ms=START_MS)
    except CronError:
        assume(False)
        raise


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions(), ZONES)
def test_every_valid_expression_is_described_with_its_zone(expr: str, tz: str) -> None:
    _parsed(expr, tz)
    words = describe(expr, tz)
    assert words and "  " not in words and not words.endswith(",")
    if tz != "UTC" and not expr.startswith("@every"):
        assert words.endswith(f", {tz}")
    else:  # UTC goes unsaid; an interval does not depend on a zone
        assert not words.endswith(f", {tz}")


_WEEK = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_SPACING = re.compile(r"every (?:(\d+) )?(second|minute|hour)s?")
_UNIT_MS = {"second": 1_000, "minute": 60_000, "hour": 3_600_000}


def _assert_spaced(expr: str, words: str) -> None:
    """ "every N units" (nothing more): consecutive fires are N units apart, in UTC."""
    m = _SPACING.fullmatch(words)
    assert m, words
    gap = int(m.group(1) or 1) * _UNIT_MS[m.group(2)]
    times = parse_schedule(expr).preview(50, START_MS + 123)
    assert [b - a for a, b in zip(times, times[1:])] == [gap] * 49


@st.composite
def stepped(draw: st.DrawFn) -> str:
    """One field stepped (`*/n`, or a list of values evenly spaced), the smaller ones
    at their start: the expressions whose words are a spacing, when n divides the cycle."""
    unit = draw(st.sampled_from(["second", "minute", "hour"]))
    size = 24 if unit == "hour" else 60
    n = draw(st.integers(1, size - 1))
    spelled = draw(st.sampled_from(["step", "list"]))
    field = f"*/{n}" if spelled == "step" else ",".join(map(str, range(0, size, n)))
    second, minute, hour = {"second": (field, "*", "*"), "minute": ("0", field, "*"),
                            "hour": ("0", "0", field)}[unit]
    return f"{second} {minute} {hour} * * *"


@settings(max_examples=150, deadline=None)
@given(stepped())
def test_a_spacing_in_words_is_the_spacing_of_the_fires(expr: str) -> None:
    words = describe(expr)
    if _SPACING.fullmatch(words):
        _assert_spaced(expr, words)
    else:  # a step that does not divide the cycle is never called a spacing
        times = parse_schedule(expr).preview(80, START_MS)
        assert len({b - a for a, b in zip(times, times[1:])}) > 1, (expr, words)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions(), ZONES)
def test_what_the_words_claim_holds_for_the_next_fires(expr: str, tz: str) -> None:
    _check_claims(expr, tz, _parsed(expr, tz))


@pytest.mark.parametrize(("expr", "tz", "words"), TABLE)
def test_what_the_table_claims_holds_for_the_next_fires(expr: str, tz: str, words: str) -> None:
    assert _check_claims(expr, tz, parse_schedule(expr, timezone=tz, anchor_ms=START_MS)) \
        or " or " in words or not re.match(r"every [\d ]*(second|minute|hour)s?$|at [\d:, and]+ every day$|"
                        r".* on [A-Z]", words)


def _check_claims(expr: str, tz: str, schedule) -> bool:
    """A sample of claims, checked against the evaluator's next fires (local time);
    True when one was checked."""
    words = describe(expr, tz).removesuffix(f", {tz}")
    checked = False
    times = schedule.preview(30, START_MS)
    local = [datetime.fromtimestamp(t / 1000, ZoneInfo(tz)) for t in times]
    if tz == "UTC" and _SPACING.fullmatch(words):
        _assert_spaced(expr, words)
        checked = True
    if m := re.fullmatch(r"at ((?:\d\d:\d\d(?::\d\d)?(?:, | and )?)+) every day", words):
        clocks = set(re.findall(r"\d\d:\d\d(?::\d\d)?", m.group(1)))
        shown = {d.strftime("%H:%M") + (d.strftime(":%S") if d.second else "") for d in local}
        if tz == "UTC":  # a DST change moves a skipped time to the jump's instant
            assert shown == clocks and len(times) == 30
            days = {d.date() for d in local}
            # every day, each time once (the first day may start after some of them)
            assert -(-30 // len(clocks)) <= len(days) <= -(-30 // len(clocks)) + 1
            checked = True
    if " or " in words:  # either day field matches: the weekday claims are the other's
        return checked
    if m := re.search(r" on ([A-Z][a-z]+day(?:, [A-Z][a-z]+day)*(?: and [A-Z][a-z]+day)?)$",
                      words):
        names = set(re.findall(r"[A-Z][a-z]+day", m.group(1)))
        assert {d.strftime("%A") for d in local} <= names
        checked = True
    if m := re.search(r" on ([A-Z][a-z]+day) through ([A-Z][a-z]+day)$", words):
        first, last = (_WEEK.index(day) for day in m.groups())
        assert all(first <= d.weekday() <= last for d in local)  # Monday = 0
        checked = True
    if m := re.search(r" on the last ([A-Z][a-z]+day) of the month$", words):
        for d in local:
            assert d.strftime("%A") == m.group(1)
            nxt = d.replace(day=1, month=d.month % 12 + 1, year=d.year + (d.month == 12))
            assert (nxt.date() - d.date()).days <= 7
        checked = True
    if m := re.search(r" every day in ([A-Z][a-z]+) through ([A-Z][a-z]+)$", words):
        first = datetime.strptime(m.group(1), "%B").month
        last = datetime.strptime(m.group(2), "%B").month
        assert all(first <= d.month <= last for d in local)
        checked = True
    if words in ("every second", "every 5 seconds"):  # no day restriction follows
        assert times and times[0] - START_MS <= 5_000
    return checked


def test_every_interval_words_are_its_period() -> None:
    schedule = parse_schedule("@every 1m30s", anchor_ms=START_MS)
    times = schedule.preview(5, START_MS)
    assert describe("@every 1m30s") == "every 1 m 30 s"
    assert [b - a for a, b in zip(times, times[1:])] == [90_000] * 4


def test_at_0230_every_day_in_berlin_fires_at_0230_berlin_time() -> None:
    times = parse_schedule("30 2 * * *", timezone="Europe/Berlin").preview(5, START_MS)
    assert describe("30 2 * * *", "Europe/Berlin") == "at 02:30 every day, Europe/Berlin"
    berlin = [datetime.fromtimestamp(t / 1000, ZoneInfo("Europe/Berlin")) for t in times]
    assert [(d.hour, d.minute) for d in berlin] == [(2, 30)] * 5
    utc = [datetime.fromtimestamp(t / 1000, dt_timezone.utc) for t in times]
    assert [(d.hour, d.minute) for d in utc] == [(1, 30)] * 5  # CET in January
