"""A schedule in plain words: "every 5 seconds", "at 02:30 every day, Europe/Berlin".

One implementation for the API (`describe` of /api/v1/cron/preview and of each job)
and, through it, the UI and `schedctl`: the browser shows what the master says, so the
words cannot differ between them.

Why our own describer and not cron-descriptor: it reads the evaluator's own parsed
fields (the bit masks and day extras that `next_after` searches), not the text, so
the words cannot disagree with the fires. A macro is described by the fields it
expands to (`@daily` -> "at 00:00 every day"); `*/7` seconds is "every 7th second
from 0 through 56", not "every 7 seconds", because 56 -> 0 is 4 seconds; both day fields restricted read
"... or ..." because a day matching either fires (the evaluator's rule, as croniter's).

The zone is named at the end when it is not UTC: the fields are read on its wall
clock. `@every` names none: intervals do not depend on a zone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Final

from ._fields import YEAR, _Field
from ._parse import parse_schedule
from ._schedule import CronSchedule, _EverySchedule, _FieldSchedule

__all__ = ["describe", "describe_schedule"]

_MONTH_NAMES: Final = ("", "January", "February", "March", "April", "May", "June", "July",
                       "August", "September", "October", "November", "December")
_DAY_NAMES: Final = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                     "Saturday")
_WEEK: Final = _DAY_NAMES[1:] + _DAY_NAMES[:1]  # Monday first: "Tuesday through Sunday"
_LIST_MAX: Final = 4  # longer lists of values read better as a range or a step
_CLOCK_TIMES_MAX: Final = 6  # at most this many times of day are listed one by one


@functools.lru_cache(maxsize=16384)
def describe(expr: str, timezone: str = "UTC") -> str:
    """`expr` in the zone `timezone` in plain words; raises CronError as parsing does.

    Cached: a jobs list describes the same few expressions thousands of times.
    """
    return describe_schedule(parse_schedule(expr, timezone=timezone))


def describe_schedule(schedule: CronSchedule) -> str:
    """What the schedule's fields say; "" for a schedule without an expression."""
    if isinstance(schedule, _EverySchedule):
        return f"every {_duration(schedule.period_ms)}"
    if not isinstance(schedule, _FieldSchedule):
        return ""  # a chained job without cronExpr: its upstream decides
    words = _describe_fields(schedule)
    return words if schedule.timezone == "UTC" else f"{words}, {schedule.timezone}"


def _duration(ms: int) -> str:
    """90_000 -> "1 m 30 s" (the units `@every` takes: h, m, s, ms)."""
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)):
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count} {unit}")
    return " ".join(parts)


# --------------------------------------------------------------------------- value sets


class _Values:
    """The values one field matches, in cycle order, with the field's bounds."""

    __slots__ = ("values", "lo", "hi")

    def __init__(self, mask: int, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi
        self.values = tuple(v for v in range(lo, hi + 1) if mask >> v & 1)

    @property
    def full(self) -> bool:
        return len(self.values) == self.hi - self.lo + 1

    @property
    def single(self) -> int | None:
        return self.values[0] if len(self.values) == 1 else None

    def step(self) -> int | None:
        """The common gap of an arithmetic progression of at least 2 values."""
        v = self.values
        if len(v) < 2:
            return None
        gap = v[1] - v[0]
        return gap if all(b - a == gap for a, b in zip(v, v[1:])) else None

    def cyclic(self) -> int | None:
        """n when the values are start, start + n, ... evenly around the whole cycle
        (n divides its length, start < lo + n): fires exactly n units apart."""
        n = self.step()
        if n is None or (self.hi - self.lo + 1) % n or self.values[0] - self.lo >= n:
            return None
        return n if self.values[-1] + n > self.hi else None


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _join(items: Sequence[str], word: str = "and") -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


def _noun(s: _Values, unit: str, name: Callable[[int], str] = str, *,
          named: bool = False) -> str:
    """"minute 5", "minutes 0 and 30", "hours 9 through 17", "every 2nd hour",
    "every 5th minute from 3 through 58"; `named` values go without their unit
    ("January through March", "every 3rd month from February through November")."""
    v, step = s.values, s.step()
    one, many = ("", "") if named else (f"{unit} ", f"{unit}s ")
    if len(v) == 1:
        return f"{one}{name(v[0])}"
    if step == 1 and len(v) >= 3:
        return f"{many}{name(v[0])} through {name(v[-1])}"
    if step is not None and len(v) > _LIST_MAX:
        every = f"every {_ordinal(step)} {unit}"
        if s.cyclic() and v[0] == s.lo:
            return every
        return f"{every} from {name(v[0])} through {name(v[-1])}"
    return f"{many}{_join([name(x) for x in v])}"


# --------------------------------------------------------------------------- the time


def _clock(h: int, m: int, s: int) -> str:
    return f"{h:02d}:{m:02d}" + (f":{s:02d}" if s else "")


def _time(sec: _Values, minute: _Values, hour: _Values) -> tuple[str, bool]:
    """The time of day, and whether it names clock times (then "every day" follows)."""
    s, m = sec.single, minute.single
    if minute.full and hour.full:
        if sec.full:
            return "every second", False
        if (n := sec.cyclic()) is not None:
            return _every(n, "second", sec.values[0] and f"second {sec.values[0]}"), False
        if s is None:
            return f"at {_noun(sec, 'second')} of every minute", False
    if s is not None and hour.full:
        at_second = f", at second {s}" if s else ""
        if minute.full:
            return f"every minute{at_second}", False
        if (n := minute.cyclic()) is not None:
            start = minute.values[0] and f"minute {minute.values[0]}"
            return _every(n, "minute", start) + at_second, False
        if m is not None:
            return "every hour" + (f" at minute {m}" + (f", second {s}" if s else "")
                                   if m or s else ""), False
        return f"every hour at {_noun(minute, 'minute')}{at_second}", False
    if s is not None and m is not None and (n := hour.cyclic()) is not None:
        first = hour.values[0]
        return _every(n, "hour", (first or m or s) and _clock(first, m, s)), False
    if (s is not None and not minute.full and not hour.full
            and len(minute.values) * len(hour.values) <= _CLOCK_TIMES_MAX):
        times = [_clock(h, mi, s) for h in hour.values for mi in minute.values]
        return f"at {_join(times)}", True
    return _time_parts(sec, minute, hour), False


def _every(n: int, unit: str, start: str | int) -> str:
    words = f"every {unit}" if n == 1 else f"every {n} {unit}s"
    return f"{words}, starting at {start}" if start else words


def _time_parts(sec: _Values, minute: _Values, hour: _Values) -> str:
    """The general form, field by field: "at seconds 0 and 30, minutes 5 through 10,
    between 09:00 and 17:59"."""
    parts: list[str] = []
    # "every ... seconds": the seconds run through each minute (no "every minute" then)
    repeating = sec.full or (sec.cyclic() is not None and sec.values[0] == 0)
    if sec.full:
        parts.append("every second")
    elif repeating:
        parts.append(f"every {sec.cyclic()} seconds")
    elif sec.single != 0:
        parts.append(f"at {_noun(sec, 'second')}")
    if minute.full:
        if not repeating:
            parts.append("every minute")
    elif repeating:
        parts.append(f"during {_noun(minute, 'minute')}")
    elif not parts and (n := minute.cyclic()) is not None:
        parts.append(_every(n, "minute", minute.values[0] and f"minute {minute.values[0]}"))
    elif parts:
        parts.append(_noun(minute, "minute"))
    else:
        parts.append(f"at {_noun(minute, 'minute')}")
    if not hour.full:
        if hour.step() == 1 or hour.single is not None:
            parts.append(f"between {hour.values[0]:02d}:00 and {hour.values[-1]:02d}:59")
        else:
            parts.append(f"during {_noun(hour, 'hour')}")
    return ", ".join(parts)


# --------------------------------------------------------------------------- the days


def _dom_items(dom: _Field) -> list[str]:
    items = []
    days = _Values(dom.mask, 1, 31)
    if days.values:
        items.append(_noun(days, "day"))
    items += [f"the weekday nearest day {d}" for d in dom.near]
    if dom.last_weekday:
        items.append("the last weekday")
    if dom.last_day:
        items.append("the last day")
    return items


def _dow_items(dow: _Field) -> tuple[list[str], bool]:
    """The weekday phrases, and whether one is "of the month" (`#`, `L`)."""
    monday_first = sum(1 << (d - 1) % 7 for d in range(7) if dow.mask >> d & 1)
    weekdays = _Values(monday_first, 0, 6)
    named = _noun(weekdays, "day", lambda i: _WEEK[i], named=True) if weekdays.values else None
    of_month = [f"the {_ordinal(n)} {_DAY_NAMES[d]}" for d, n in dow.nth]
    of_month += [f"the last {_DAY_NAMES[d]}" for d in dow.last_of]
    return ([named] if named else []) + of_month, bool(of_month)


def _month(s: _FieldSchedule) -> str | None:
    months = _Values(s._months, 1, 12)
    return None if months.full else _noun(months, "month", lambda m: _MONTH_NAMES[m], named=True)


def _days(s: _FieldSchedule, months: str | None) -> str | None:
    """"on ..." for the day fields (with the months), None when every day matches."""
    of_months = f"of {months}" if months else "of the month"
    phrases = []
    if s._use_dom:
        dom = f"on {_join(_dom_items(s._dom))}"
        phrases.append(f"{dom} of every month" if not months and not s._use_dow
                       else f"{dom} {of_months}")
    if s._use_dow:
        items, of_month = _dow_items(s._dow)
        dow = f"on {_join(items)}" + (f" {of_months}" if of_month else "")
        if months and not of_month:
            dow += f" in {months}"
        phrases.append(dow)
    return " or ".join(phrases) or None


def _describe_fields(s: _FieldSchedule) -> str:
    # The evaluator's own fields (the masks next_after searches): the words follow them.
    time, clock = _time(_Values(s._seconds, 0, 59), _Values(s._minutes, 0, 59),
                        _Values(s._hours, 0, 23))
    months = _month(s)
    days = _days(s, months)
    if days is not None:
        words = f"{time} {days}"
    elif clock:
        words = f"{time} every day" + (f" in {months}" if months else "")
    else:
        words = time + (f" in {months}" if months else "")
    if s._years is not None:
        years = _Values(s._years << YEAR.lo, YEAR.lo, YEAR.hi)
        words += " in " + _noun(years, "year", named=True)
    return words
