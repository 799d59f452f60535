"""Time-zone names -> zones, and the offset arithmetic the DST rules build on.

Fields are matched against the wall clock of the schedule's zone (default UTC, never the
machine's zone): the names of the machine's zone and of tzdata internals are refused, and
every spelling of UTC maps to None, the fast path with no offsets at all. What happens at
a DST change is the search's business (see _schedule).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._errors import TimeZoneError

_UTC_NAMES: Final = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal",
                               "Universal", "Zulu", "Etc/Zulu", "GMT", "Etc/GMT"})
#: Zone names that denote the machine's zone or tzdata internals, not a place.
_FORBIDDEN_ZONES: Final = frozenset({"localtime", "posixrules", "posix", "right"})


@functools.lru_cache(maxsize=1024)
def load_zone(name: str) -> ZoneInfo | None:
    """The zone for an IANA name; None for UTC (the fast path). Raises TimeZoneError."""
    if not isinstance(name, str) or not name:
        raise TimeZoneError(str(name), "empty or non-string time zone")
    if name in _UTC_NAMES:
        return None
    if name in _FORBIDDEN_ZONES or name.split("/", 1)[0] in _FORBIDDEN_ZONES:
        raise TimeZoneError(name, "forbidden time zone (not a place)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise TimeZoneError(name) from None


def _offset_s(aware: datetime) -> int:
    delta = aware.utcoffset()
    assert delta is not None
    return delta.days * 86_400 + delta.seconds


def _offset_at(zone: ZoneInfo, t_s: int) -> int:
    return _offset_s(datetime.fromtimestamp(t_s, zone))


def _transition(zone: ZoneInfo, lo_s: int, hi_s: int) -> int:
    """First instant in (lo_s, hi_s] with hi_s's offset; one transition lies between."""
    target = _offset_at(zone, hi_s)
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if _offset_at(zone, mid) == target:
            hi_s = mid
        else:
            lo_s = mid
    return hi_s
