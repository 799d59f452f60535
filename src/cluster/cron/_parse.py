"""Whole expressions -> CronSchedule: field layouts, macros and `@every` durations.

  macros    @yearly @annually @monthly @weekly @daily @midnight @hourly
  interval  @every <Go duration>: h, m, s, ms units, e.g. 90s, 1m30s, 1.5h; >= 1 s

Parsing is cached by (expression, zone): a worker loads 100k jobs whose expressions
mostly repeat. The `@every` anchor is per job, so only its period is cached.
"""

from __future__ import annotations

import functools
import re
from fractions import Fraction
from typing import Final, NamedTuple

from ._errors import CronError, TimeZoneError
from ._fields import DOM, DOW, HOUR, MINUTE, MONTH, SECOND, YEAR, _Field, _FieldError, _parse_field
from ._schedule import CronSchedule, _EverySchedule, _FieldSchedule
from ._zones import load_zone

MAX_EXPR_CHARS: Final = 1024
MIN_EVERY_MS: Final = 1_000
MAX_EVERY_MS: Final = 366 * 86_400_000

_MACROS: Final = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_LAYOUTS: Final = {
    5: (MINUTE, HOUR, DOM, MONTH, DOW),
    6: (SECOND, MINUTE, HOUR, DOM, MONTH, DOW),
    7: (SECOND, MINUTE, HOUR, DOM, MONTH, DOW, YEAR),
}
_ZERO_SECONDS: Final = _Field(text="0", mask=1, full=False)
_EVERY_RE = re.compile(r"@every(?:\s+(.*))?", re.ASCII | re.DOTALL)
_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)", re.ASCII)
_UNIT_MS: Final = {"h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}


class _Every(NamedTuple):
    period_ms: int


def parse_schedule(expr: str, *, timezone: str = "UTC",
                   anchor_ms: int | None = None) -> CronSchedule:
    """Parse `expr` for zone `timezone`; raises CronError (TimeZoneError for the zone).

    anchor_ms only matters for `@every` (fires at anchor_ms + k * period, k >= 1); pass
    the job's creation time. None means the epoch. Parsing is cached by (expr, timezone).
    """
    if not isinstance(expr, str):
        raise CronError(repr(expr), f"expression must be a string, not {type(expr).__name__}")
    if not isinstance(timezone, str):
        raise TimeZoneError(repr(timezone), "time zone must be a string, got")
    if anchor_ms is not None and (isinstance(anchor_ms, bool) or not isinstance(anchor_ms, int)):
        raise TypeError(f"anchor_ms must be an int or None, not {type(anchor_ms).__name__}")
    parsed = _parse_cached(expr, timezone)
    if isinstance(parsed, _Every):
        return _EverySchedule(expr, timezone, parsed.period_ms, anchor_ms or 0)
    return parsed


@functools.lru_cache(maxsize=16384)
def _parse_cached(expr: str, timezone: str) -> _FieldSchedule | _Every:
    zone = load_zone(timezone)
    text = expr.strip().lower()
    if len(text) > MAX_EXPR_CHARS:
        raise CronError(expr[:64] + "...", f"longer than {MAX_EXPR_CHARS} characters")
    if not text:
        raise CronError(expr, "empty expression")
    if text.startswith("@"):
        if m := _EVERY_RE.fullmatch(text):
            return _Every(_parse_every(expr, (m.group(1) or "").strip()))
        if text not in _MACROS:
            raise CronError(expr, f"unknown macro {text!r} (expected @every <duration> "
                            f"or one of {', '.join(_MACROS)})")
        text = _MACROS[text]
    words = text.split()
    kinds = _LAYOUTS.get(len(words))
    if kinds is None:
        raise CronError(expr, f"expected 5, 6 or 7 fields, got {len(words)}")
    fields = []
    for kind, word in zip(kinds, words, strict=True):
        try:
            fields.append(_parse_field(kind, word))
        except _FieldError as err:
            raise CronError(expr, f"{kind.name} field {word!r}: {err}") from None
    year = fields.pop() if len(fields) == 7 else None
    if len(fields) == 5:
        fields.insert(0, _ZERO_SECONDS)
    return _FieldSchedule(expr, timezone, zone, tuple(fields), year)


def _parse_every(expr: str, duration: str) -> int:
    """Go-style duration (h, m, s, ms; decimals allowed) -> whole milliseconds."""
    if not duration:
        raise CronError(expr, "@every needs a duration, e.g. '@every 1m30s'")
    total, pos = Fraction(0), 0
    for m in _DURATION_PART_RE.finditer(duration):
        if m.start() != pos:
            break
        total += Fraction(m.group(1)) * _UNIT_MS[m.group(2)]
        pos = m.end()
    if pos != len(duration) or pos == 0:
        raise CronError(expr, f"@every duration {duration!r}: expected <number><unit>... "
                        "with units h, m, s, ms (e.g. 90s, 1m30s, 1.5h)")
    if total.denominator != 1:
        raise CronError(expr, f"@every duration {duration!r} is not whole milliseconds")
    if not MIN_EVERY_MS <= total <= MAX_EVERY_MS:
        raise CronError(expr, f"@every duration {duration!r} must be between 1s and 8784h")
    return int(total)
