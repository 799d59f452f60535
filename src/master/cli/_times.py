"""Reading the times operators type for --since/--until."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final

from ._errors import UsageError

_RELATIVE_RE: Final = re.compile(r"-((?:\d+(?:\.\d+)?[wdhms])+)")
_RELATIVE_PART_RE: Final = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_UNIT_S: Final = {"w": 604_800, "d": 86_400, "h": 3600, "m": 60, "s": 1}


def parse_time_ms(text: str, now_s: float) -> int:
    """--since/--until: epoch ms, ISO-8601 (naive = local time), or relative `-1h30m`."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    if text == "now":
        return int(now_s * 1000)
    if match := _RELATIVE_RE.fullmatch(text):
        seconds = sum(float(n) * _UNIT_S[u] for n, u in _RELATIVE_PART_RE.findall(match[1]))
        return int((now_s - seconds) * 1000)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"cannot read time {text!r}: give epoch ms, ISO-8601 "
                         "(2024-05-01T12:00) or relative (-1h, -30m, -2d)") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # naive = the operator's local time
    return int(moment.timestamp() * 1000)
