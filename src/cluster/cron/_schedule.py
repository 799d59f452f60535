"""The next-time search: CronSchedule and its two kinds (`@every`, field expressions).

Day matching follows croniter: when both day fields are restricted a day matches
either; a field counts as unrestricted when it is `*`/`?`, or when it lists every value
and the other day field contains a `*`.

Time zones: fields are matched against the wall clock of the schedule's zone (default
UTC, never the machine's zone). At a DST change:
- a wall time the clock skips (the gap) fires once, at the instant the clock jumps
  (Berlin, last Sunday of March: `30 2 * * *` fires at 03:00 CEST, like croniter);
- a wall time the clock shows twice (the overlap) fires on its first occurrence only,
  so daily jobs never run twice (Berlin, last Sunday of October: `30 2 * * *` fires at
  02:30 CEST, not again at 02:30 CET; croniter fires both);
- except expressions whose hour field lists every hour (`*`, `0-23`): they match the
  wall clock as it is shown at each instant, so a skipped wall time never fires and a
  repeated one fires in both passes. When the shift is a whole number of their steps
  (Berlin's hour; `*/20 * * * *`) that keeps their rhythm in elapsed time: 01:40 CET,
  then 03:00 CEST 20 minutes later in March; 02:00-02:40 twice in October.
  When it is not, nothing corrects it: the one interval that spans the change is
  stretched or shortened by the shift. Lord Howe moves by 30 minutes (+10:30 <->
  +11:00 at 02:00), so `0 * * * *` fires 01:00 then 03:00 in October (02:00 does not
  exist) and 01:00 then 02:00 in April (01:30-02:00 repeats, with no :00 in it): a
  90-minute interval at both changes, as croniter and cronsim give; `30 * * * *` fires
  01:30 then 02:30 in October and 01:30 twice in April, 30 minutes apart each time (as
  croniter; cronsim fires neither that 02:30 nor the second 01:30).

`@every` fires at `anchor_ms + k * period` for k >= 1: the caller passes the anchor (the
job's creation time; JobSpec derives a per-name phase when it has none); without one the
anchor is the epoch. Time zones do not affect intervals.

No future time (`0 0 0 30 2 * *`, all years past): next_after returns None, and
no_fire_reason() says why in one line (`no time matches before 2100`). Impossible day
patterns are detected when parsing. Every search is bounded, never a loop:
- with a year field that restricts, by its last year (2099 at most): every time it can
  match up to then is found from any start, however far ahead its first allowed year
  lies (issue 16: the bound used to count from the start year). At most 130 years of
  at most 12 months: a few ms in the worst case;
- without one, to a few years past the start: every satisfiable pattern fires within
  8 years (Feb 29 across 2100), except a fifth weekday of February, searched over one
  400-year Gregorian cycle.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Final, final
from zoneinfo import ZoneInfo

from ._fields import YEAR, _Field, _next_bit
from ._zones import _offset_s, _transition

#: Every satisfiable day pattern without a year field fires within 8 years (Feb 29 across
#: 2100); searching one more bounds the work for patterns that never fire.
_HORIZON_YEARS: Final = 9
_MAX_YEAR: Final = 9000
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
#: Searches start no earlier than 1900 and end before _MAX_YEAR (datetime's range).
_MIN_T_S: Final = (date(1900, 1, 1).toordinal() - _EPOCH_ORDINAL) * 86_400
_MAX_T_S: Final = (date(_MAX_YEAR, 1, 1).toordinal() - _EPOCH_ORDINAL) * 86_400
_NAIVE_EPOCH: Final = datetime(1970, 1, 1)
_DAYS_IN_MONTH: Final = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_in_month(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS_IN_MONTH[month]


def _nearest_weekday(day: int, dim: int, first: int) -> int:
    """croniter's `W`: the weekday (Mon-Fri) nearest to `day`, within the month."""
    day = min(day, dim)
    weekday = (first + day - 1) % 7
    if weekday == 6:  # Saturday
        return day - 1 if day > 1 else day + 2
    if weekday == 0:  # Sunday
        return day + 1 if day < dim else day - 2
    return day


# --------------------------------------------------------------------------- schedules


class CronSchedule:
    """When a job fires. Immutable; one instance may serve many jobs (parsing is cached).

    Build with parse_schedule(). Times are epoch milliseconds; fires of field
    expressions fall on whole seconds, `@every` fires on anchor + k * period.
    """

    __slots__ = ("expr", "timezone")

    def __init__(self, expr: str, timezone: str) -> None:
        self.expr = expr
        self.timezone = timezone

    def next_after(self, t_ms: int) -> int | None:
        """The first fire time strictly after t_ms, or None when there is none."""
        raise NotImplementedError

    def no_fire_reason(self) -> str:
        """Why next_after answered None, in one line for users (the API's `reason`).

        Meaningful only after next_after returned None: it does not search again.
        """
        return "no time matches"

    def preview(self, n: int, after_ms: int) -> list[int]:
        """Up to n next fire times after after_ms (fewer when the schedule ends)."""
        times: list[int] = []
        t: int | None = after_ms
        while len(times) < n and t is not None:
            t = self.next_after(t)
            if t is not None:
                times.append(t)
        return times

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.expr!r}, timezone={self.timezone!r})"


@final
class _EverySchedule(CronSchedule):
    """`@every`: pure integer arithmetic, no calendar and no time zone."""

    __slots__ = ("period_ms", "anchor_ms")

    def __init__(self, expr: str, timezone: str, period_ms: int, anchor_ms: int) -> None:
        super().__init__(expr, timezone)
        self.period_ms = period_ms
        self.anchor_ms = anchor_ms

    def next_after(self, t_ms: int) -> int | None:
        k = max(1, (t_ms - self.anchor_ms) // self.period_ms + 1)
        return self.anchor_ms + k * self.period_ms

    def __repr__(self) -> str:
        return f"_EverySchedule({self.expr!r}, anchor_ms={self.anchor_ms})"


@final
class _FieldSchedule(CronSchedule):
    """A 5/6/7-field expression evaluated on the wall clock of one zone."""

    __slots__ = ("_zone", "_seconds", "_minutes", "_hours", "_months", "_years",
                 "_dom", "_dow", "_use_dom", "_use_dow", "_never", "_horizon_years",
                 "_follow_elapsed")

    def __init__(self, expr: str, timezone: str, zone: ZoneInfo | None,
                 fields: tuple[_Field, ...], year: _Field | None) -> None:
        super().__init__(expr, timezone)
        second, minute, hour, dom, month, dow = fields
        self._zone = zone
        self._seconds, self._minutes, self._hours = second.mask, minute.mask, hour.mask
        self._months = month.mask
        # Invariant: None (no year field, or one that lists every year: like croniter,
        # it restricts nothing) or bit (y - 1970) per allowed year, which bounds the
        # search by itself (no bit past 2099).
        self._years = None if year is None or year.full else year.mask
        self._dom, self._dow = dom, dow
        dom_free = dom.text in ("*", "?") or (dom.full and "*" in dow.text)
        dow_free = dow.text in ("*", "?") or (dow.full and "*" in dom.text)
        # Both free: every day. One free: the other decides. Neither: either matches.
        self._use_dom, self._use_dow = not dom_free, not dow_free
        self._never = self._days_impossible()
        self._horizon_years = 401 if dow.nth and self._use_dow else _HORIZON_YEARS
        self._follow_elapsed = hour.full

    def _days_impossible(self) -> bool:
        """True when no allowed month can ever contain a matching day (`30 2`)."""
        dom = self._dom
        if self._use_dow or not self._use_dom or dom.last_day or dom.last_weekday or dom.near:
            return False
        longest = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
        return not any(self._months >> m & 1 and dom.mask & ((2 << longest[m]) - 2)
                       for m in range(1, 13))

    def no_fire_reason(self) -> str:
        if self._years is not None:  # a restricting year field ends it by 2099
            ending = f"no time matches before {YEAR.hi + 1}"
        elif self._never:
            ending = "no time ever matches"
        else:  # only the end of datetime's range is left
            return f"no time matches before {_MAX_YEAR}"
        if not self._never:
            return ending
        months = [str(m) for m in range(1, 13) if self._months >> m & 1]
        noun = "month" if len(months) == 1 else "months"
        return (f"{ending}: day-of-month {self._dom.text!r} never occurs in "
                f"{noun} {','.join(months)}")

    def _day_mask(self, year: int, month: int) -> int:
        """Bit d set iff day d of this month matches the day fields."""
        dim = _days_in_month(year, month)
        days = (2 << dim) - 2
        if not (self._use_dom or self._use_dow):
            return days
        first = (date(year, month, 1).toordinal() - _EPOCH_ORDINAL + 4) % 7  # Sunday = 0
        mask = 0
        if self._use_dom:
            dom = self._dom
            mask = dom.mask
            if dom.last_day:
                mask |= 1 << dim
            for day in dom.near:
                mask |= 1 << _nearest_weekday(day, dim, first)
            if dom.last_weekday:
                mask |= 1 << _nearest_weekday(dim, dim, first)
        if self._use_dow:
            dow = self._dow
            mask |= dow.week_masks[first]
            for weekday, nth in dow.nth:
                mask |= 1 << (1 + (weekday - first) % 7 + 7 * (nth - 1))
            last = (first + dim - 1) % 7
            for weekday in dow.last_of:
                mask |= 1 << (dim - (last - weekday) % 7)
        return mask & days

    def _next_local(self, after: int) -> int | None:
        """The first matching wall time (seconds, as if UTC) strictly after `after`."""
        if self._never:
            return None
        x = after + 1
        days, sod = divmod(x, 86_400)
        d0 = date.fromordinal(days + _EPOCH_ORDINAL)
        y, mo, d = d0.year, d0.month, d0.day
        h, rest = divmod(sod, 3600)
        mi, s = divmod(rest, 60)
        years = self._years
        # With a year field, its last bit ends the search (<= 130 years of at most 12
        # months each); without one, every satisfiable pattern fires within the horizon.
        # The bound must not depend on the start year alone: a year field may begin
        # decades after it (issue 16).
        limit = _MAX_YEAR if years is not None else min(y + self._horizon_years, _MAX_YEAR)
        mask_key, dmask = (0, 0), 0
        while True:
            if years is not None:
                ny = _next_bit(years, max(y - 1970, 0))
                if ny < 0:
                    return None
                if ny + 1970 != y:
                    y, mo, d, h, mi, s = ny + 1970, 1, 1, 0, 0, 0
            if y > limit:
                return None
            nm = _next_bit(self._months, mo)
            if nm < 0:
                y, mo, d, h, mi, s = y + 1, 1, 1, 0, 0, 0
                continue
            if nm != mo:
                mo, d, h, mi, s = nm, 1, 0, 0, 0
            if mask_key != (y, mo):
                mask_key, dmask = (y, mo), self._day_mask(y, mo)
            nd = _next_bit(dmask, d)
            if nd < 0:
                mo, d, h, mi, s = mo + 1, 1, 0, 0, 0
                if mo > 12:
                    y, mo = y + 1, 1
                continue
            if nd != d:
                d, h, mi, s = nd, 0, 0, 0
            nh = _next_bit(self._hours, h)
            if nh < 0:
                d, h, mi, s = d + 1, 0, 0, 0
                continue
            if nh != h:
                h, mi, s = nh, 0, 0
            nmi = _next_bit(self._minutes, mi)
            if nmi < 0:
                h, mi, s = h + 1, 0, 0
                continue
            if nmi != mi:
                mi, s = nmi, 0
            ns = _next_bit(self._seconds, s)
            if ns < 0:
                mi, s = mi + 1, 0
                continue
            day_number = date(y, mo, d).toordinal() - _EPOCH_ORDINAL
            return day_number * 86_400 + h * 3600 + mi * 60 + ns

    def next_after(self, t_ms: int) -> int | None:
        # A fire F (whole seconds) is after t_ms iff F > floor(t_ms / 1000).
        t_s = max(t_ms // 1000, _MIN_T_S)
        if t_s >= _MAX_T_S:
            return None
        if self._zone is None:
            local = self._next_local(t_s)
            return None if local is None else local * 1000
        fire = self._next_zoned(self._zone, t_s)
        return None if fire is None else fire * 1000

    def _next_zoned(self, zone: ZoneInfo, t_s: int) -> int | None:
        now = datetime.fromtimestamp(t_s, zone)
        offset = _offset_s(now)
        local = self._next_local(t_s + offset)
        fire = None if local is None else self._resolve(zone, local, t_s)
        if self._follow_elapsed and now.fold == 0:
            other = _offset_s(now.replace(fold=1))
            if other < offset:  # t_s is in the first pass of an overlap
                second_pass = self._second_pass(zone, t_s, offset, other)
                if second_pass is not None and (fire is None or second_pass < fire):
                    fire = second_pass
        return fire

    def _second_pass(self, zone: ZoneInfo, t_s: int, before: int, after: int) -> int | None:
        """First fire in the repeated wall-clock range, seen from its first pass."""
        change = _transition(zone, t_s, t_s + before - after)
        start, end = change + after, change + before  # the repeated local range
        local = self._next_local(start - 1)
        if local is None or local >= end:
            return None
        return local - after

    def _resolve(self, zone: ZoneInfo, local: int, t_s: int) -> int | None:
        """The instant of the first matching wall time >= `local` that fires after t_s."""
        for _ in range(64):  # each round steps past one DST change
            naive = _NAIVE_EPOCH + timedelta(seconds=local)
            first = _offset_s(naive.replace(tzinfo=zone))
            second = _offset_s(naive.replace(tzinfo=zone, fold=1))
            if first == second:
                return local - first
            early, late = local - first, local - second
            if early > late:  # a gap: the clock skipped this wall time
                change = _transition(zone, late, early)
                if not self._follow_elapsed:
                    return change
                resume = change + second  # first wall time after the jump
            else:  # an overlap: the wall time happens twice
                if early > t_s:
                    return early
                if self._follow_elapsed:
                    return late
                change = _transition(zone, early, late)
                resume = change + first  # first wall time after the repeat
            nxt = self._next_local(resume - 1)
            if nxt is None:
                return None
            local = nxt
        return None
