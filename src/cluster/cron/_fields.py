"""One cron field -> one integer bit mask (plus the day-field extras).

Grammar (case-insensitive, fields separated by blanks):
  5 fields  minute hour day-of-month month day-of-week          (seconds = 0)
  6 fields  second minute hour day-of-month month day-of-week
  7 fields  second minute hour day-of-month month day-of-week year (1970-2099; a year
            field that lists every year, `*` or 1970-2099, restricts nothing and the
            schedule goes on after 2099, as in croniter)
  item      * | ? (day fields) | v | a-b | */n | a-b/n | a/n, comma-separated lists;
            months jan..dec, weekdays sun..sat, weekday 7 = Sunday; a-b with a > b wraps
            (fri-mon, 22-2); a-a is just a (croniter reads it as the whole field).
  day-of-month extras  L (last day), a-L, nW / Wn (nearest weekday), LW (last weekday)
  day-of-week extras   d#n (n-th weekday d of the month), dL / Ld (last weekday d)
(the macros and `@every` are whole expressions: see _parse).

A field is parsed once and cached: the same fields repeat across many expressions.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Final, NamedTuple

#: Bits 0, 7, 14, 21, 28: one weekday's days in a month, shifted to its first day.
_WEEKLY: Final = sum(1 << (7 * k) for k in range(5))


@dataclass(frozen=True, eq=False)  # identity hash: a cache key of _parse_field
class _Kind:
    name: str
    lo: int
    hi: int
    names: dict[str, int]


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
SECOND = _Kind("second", 0, 59, {})
MINUTE = _Kind("minute", 0, 59, {})
HOUR = _Kind("hour", 0, 23, {})
DOM = _Kind("day-of-month", 1, 31, {})
MONTH = _Kind("month", 1, 12, {m: i + 1 for i, m in enumerate(_MONTHS)})
DOW = _Kind("day-of-week", 0, 7, {d: i for i, d in enumerate(_WEEKDAYS)})
YEAR = _Kind("year", 1970, 2099, {})


class _Field(NamedTuple):
    """One parsed field. Invariant: `mask` has bit v set iff plain value v matches
    (day-of-week: bit 0..6, 7 folded into 0; year: bit y - 1970)."""

    text: str
    mask: int
    full: bool  # every value, no extras
    last_day: bool = False  # L
    last_weekday: bool = False  # LW
    near: tuple[int, ...] = ()  # nW
    nth: tuple[tuple[int, int], ...] = ()  # d#n as (weekday, n)
    last_of: tuple[int, ...] = ()  # dL
    week_masks: tuple[int, ...] = ()  # day-of-week: month day mask per weekday of the 1st


class _FieldError(Exception):
    """Raised inside field parsing; parse_schedule turns it into CronError."""


_ITEM_RE = re.compile(r"(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?", re.ASCII)
_NEAR_RE = re.compile(r"(\d+)w|w(\d+)", re.ASCII)
_NTH_RE = re.compile(r"([a-z0-9]+)#(\d+)", re.ASCII)
_LAST_OF_RE = re.compile(r"([a-z0-9]+)l|l([a-z0-9]+)", re.ASCII)


def _small_int(digits: str) -> int:
    """int() of a digit string, capped at 10**6 (no conversion of huge strings)."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 6 else 10**6


def _value(kind: _Kind, token: str) -> int:
    if token.isdigit():
        value = _small_int(token)
    elif token in kind.names:
        value = kind.names[token]
    else:
        raise _FieldError(f"unknown value {token!r}")
    if not kind.lo <= value <= kind.hi:
        raise _FieldError(f"{token} is out of range {kind.lo}-{kind.hi}")
    return value


def _range_mask(kind: _Kind, base: str, step_text: str | None) -> int:
    step = 1 if step_text is None else _small_int(step_text)
    if step == 0:
        raise _FieldError("step must be at least 1")
    if base == "*":
        low, high = kind.lo, kind.hi
    elif "-" in base:
        low_text, high_text = base.split("-")
        low = _value(kind, low_text)
        high = 31 if kind is DOM and high_text == "l" else _value(kind, high_text)
    else:
        low = _value(kind, base)
        high = kind.hi if step_text is not None else low
    cycle_hi = 6 if kind is DOW else kind.hi
    if kind is DOW and low == 7:  # Sunday as a start: 7, 7-7, 7-2, 7/2
        low, high = 0, 0 if high == 7 else high
    size = cycle_hi - kind.lo + 1
    if low <= high:
        values = range(low, high + 1, step)
    else:  # wraps: continue the cycle past its end (fri-mon, 22-2)
        values = range(low, low + (high - low) % size + 1, step)
    mask = 0
    for v in values:
        mask |= 1 << (kind.lo + (v - kind.lo) % size)  # also folds weekday 7 into 0
    return mask


def _full_mask(kind: _Kind) -> int:
    hi = 6 if kind is DOW else kind.hi
    return ((1 << (hi + 1)) - 1) & ~((1 << kind.lo) - 1)


@dataclass
class _Extras:
    """Day-field extras collected while parsing one field."""

    last_day: bool = False
    last_weekday: bool = False
    near: list[int] = field(default_factory=list)
    nth: list[tuple[int, int]] = field(default_factory=list)
    last_of: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.last_day or self.last_weekday or self.near or self.nth
                    or self.last_of)


@functools.lru_cache(maxsize=8192)
def _parse_field(kind: _Kind, text: str) -> _Field:
    """Parse one field (lower-case). Cached: fields repeat across many expressions."""
    mask, extras = 0, _Extras()
    for item in text.split(","):
        mask |= _parse_item(kind, item, extras)
    shift = kind.lo if kind is YEAR else 0
    parsed = _Field(text=text, mask=mask >> shift,
                    full=mask == _full_mask(kind) and not extras,
                    last_day=extras.last_day, last_weekday=extras.last_weekday,
                    near=tuple(extras.near), nth=tuple(extras.nth),
                    last_of=tuple(extras.last_of))
    if kind is DOW:
        return parsed._replace(week_masks=_week_masks(parsed.mask))
    return parsed


def _parse_item(kind: _Kind, item: str, extras: _Extras) -> int:
    """Mask of one comma-separated item; day-field extras go into `extras`."""
    if item == "":
        raise _FieldError("empty list item")
    if item == "?":
        if kind not in (DOM, DOW):
            raise _FieldError("'?' is only allowed in the day fields")
        return _full_mask(kind)
    if kind is DOM:
        if item == "l":
            extras.last_day = True
            return 0
        if item == "lw":
            extras.last_weekday = True
            return 0
        if m := _NEAR_RE.fullmatch(item):
            extras.near.append(_value(kind, m.group(1) or m.group(2)))
            return 0
    if kind is DOW:
        if m := _NTH_RE.fullmatch(item):
            nth = _small_int(m.group(2))
            if not 1 <= nth <= 5:
                raise _FieldError(f"{item!r}: occurrence must be 1-5")
            extras.nth.append((_value(kind, m.group(1)) % 7, nth))
            return 0
        if m := _LAST_OF_RE.fullmatch(item):
            extras.last_of.append(_value(kind, m.group(1) or m.group(2)) % 7)
            return 0
    if m := _ITEM_RE.fullmatch(item):
        return _range_mask(kind, m.group(1), m.group(2))
    raise _FieldError(f"cannot parse {item!r}")


def _week_masks(dow_mask: int) -> tuple[int, ...]:
    """Per weekday of the 1st (Sunday = 0): month-day mask (bit d = day d) of dow_mask."""
    masks = []
    for first in range(7):
        mask = 0
        for weekday in range(7):
            if dow_mask >> weekday & 1:
                mask |= _WEEKLY << (1 + (weekday - first) % 7)
        masks.append(mask)
    return tuple(masks)


def _next_bit(mask: int, v: int) -> int:
    """Smallest set bit index >= v, or -1."""
    rest = mask >> v
    if not rest:
        return -1
    return v + (rest & -rest).bit_length() - 1
