"""Text for the operator's terminal: escaped cells, aligned tables, times and spans.

Server data is printed with control characters escaped, so a job's command or output
cannot drive the operator's terminal. Times are shown in local ISO-8601.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# C0/C1 controls (except newline and tab), DEL and bidi overrides: escaped on output.
_CONTROL_RE: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_BLANKS_RE: Final = re.compile(r"\s+")


def safe_text(text: str) -> str:
    """Text with terminal control characters shown as escapes (newlines and tabs kept)."""
    text = text.replace("\r\n", "\n")
    return _CONTROL_RE.sub(lambda m: repr(m.group())[1:-1], text)


def one_line(text: str) -> str:
    """`text` escaped, its runs of white space (newlines too) folded to one blank."""
    return safe_text(_BLANKS_RE.sub(" ", text).strip())


def cell(value: Any, width: int | None = None) -> str:
    """A table cell: one line, escaped, cut to `width` characters with an ellipsis."""
    if value is None:
        return "-"
    text = one_line(str(value))
    if width is not None and len(text) > width:
        return text[: max(width - 1, 0)] + "…"
    return text


def pairs_text(mapping: Mapping[str, Any] | None) -> str:
    """`k=v,k2=v2`, sorted by key; `-` when empty."""
    return ",".join(f"{k}={v}" for k, v in sorted((mapping or {}).items())) or "-"


def local_iso(ms: int | None) -> str:
    """Epoch ms as local ISO-8601 with offset, to the second."""
    if ms is None:
        return "-"
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone()
    return moment.isoformat(timespec="seconds")


def zone_iso(ms: int, zone: str) -> str:
    """Epoch ms as ISO-8601 in `zone` (local time when the zone is unknown here)."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return local_iso(ms)
    return datetime.fromtimestamp(ms / 1000, tz=tz).isoformat(timespec="seconds")


def span(ms: float) -> str:
    """A length of time, two units at most: 45s, 3m 5s, 2h 10m, 4d 3h."""
    seconds = int(abs(ms) // 1000)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds}s" if seconds else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def relative(ms: int | None, now_ms: int) -> str:
    """`in 3m 5s` / `2h ago` / `now`."""
    if ms is None:
        return "-"
    delta = ms - now_ms
    if abs(delta) < 1000:
        return "now"
    return f"in {span(delta)}" if delta > 0 else f"{span(delta)} ago"


def duration(start_ms: int | None, end_ms: int | None) -> str:
    if start_ms is None or end_ms is None:
        return "-"
    elapsed = end_ms - start_ms
    return f"{elapsed / 1000:.3f}s" if elapsed < 60_000 else span(elapsed)


def format_row(cells: Sequence[str], widths: Sequence[int]) -> str:
    """One aligned row; the last column is not padded (no trailing blanks)."""
    padded = [c.ljust(w) for c, w in zip(cells[:-1], widths, strict=False)]
    return "  ".join([*padded, cells[-1]]).rstrip()


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns aligned on the widest cell; cells must already be one-line strings."""
    rows = [list(r) for r in rows]
    widths = [max(len(r[i]) for r in [list(headers), *rows]) for i in range(len(headers))]
    return "\n".join(format_row(r, widths) for r in [list(headers), *rows])


def format_fields(pairs: Iterable[tuple[str, str]]) -> str:
    """`key   value` lines aligned on the longest key."""
    pairs = list(pairs)
    width = max((len(k) for k, _ in pairs), default=0)
    return "\n".join(f"{k.ljust(width)}  {v}".rstrip() for k, v in pairs)
