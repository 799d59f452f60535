"""Follow cursors: every run recorded after a point, each once, in the order it lands.

``runs --follow`` must neither miss nor repeat a record however fast they come, so it
pages by the table's auto-increment ``id`` (``WHERE id > after ORDER BY id``) instead of
re-reading the newest page. An id alone is not enough: ids are handed out when a
transaction inserts, not when it commits, so a batch still in flight may commit an id
*below* one already read (several workers write at once). An id missing below the
cursor is therefore a *hole*, remembered with the time it was first seen and asked for
again on every next page until it appears or ``HOLE_WAIT_MS`` has passed (longer than
any batch may take to commit; ids that are never used, burned by upserts and
rollbacks, are given up then). At most ``MAX_HOLES`` are kept, the newest.

The cursor travels through the client, so it is opaque and decoding trusts nothing:
anything malformed is an ``InvalidCursor`` (a 400 at the API).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Final, NamedTuple

from ._errors import InvalidCursor
from ._record import RunRecord

__all__ = ["HOLE_WAIT_MS", "MAX_HOLES", "FollowCursor", "FollowPage"]

HOLE_WAIT_MS: Final = 30_000  # > the LogSink's longest batch (db timeout, retries)
MAX_HOLES: Final = 100
START_LOOKBACK: Final = 1_000  # ids below the newest one checked for holes at the start

_VERSION = "f1"
_NUMBER = re.compile(r"[0-9]{1,19}", re.ASCII)
_MAX_ID = 2**63 - 1


class FollowPage(NamedTuple):
    """Records that landed after a follow cursor, oldest first; ``after`` continues
    from them. ``caught_up``: nothing more had landed (False: ask again at once)."""

    records: list[RunRecord]
    after: str
    caught_up: bool


@dataclass(frozen=True, slots=True)
class FollowCursor:
    """Every id up to ``after`` was delivered, except the ``holes`` (id, first seen ms)."""

    after: int
    holes: tuple[tuple[int, int], ...] = ()

    def encode(self) -> str:
        holes = ",".join(f"{i}.{ms}" for i, ms in self.holes)
        raw = f"{_VERSION}:{self.after}:{holes}".encode("ascii")
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, text: str) -> "FollowCursor":
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
            version, after, holes = raw.split(":")
            if version != _VERSION:
                raise ValueError(version)
            pairs = [h.split(".") for h in holes.split(",")] if holes else []
            if len(pairs) > MAX_HOLES or any(len(p) != 2 for p in pairs):
                raise ValueError(holes)
            return cls(_number(after), tuple((_number(i), _number(ms)) for i, ms in pairs))
        except (ValueError, binascii.Error, UnicodeDecodeError, TypeError):
            raise InvalidCursor(str(text), "after") from None

    @property
    def hole_ids(self) -> list[int]:
        return [i for i, _ in self.holes]

    def advance(self, ids: list[int], now_ms: int) -> "FollowCursor":
        """The cursor after a page that held ``ids`` (every id read, matched or not:
        ascending, each either above ``after`` or one of the holes)."""
        got = set(ids)
        holes = [(i, ms) for i, ms in self.holes
                 if i not in got and now_ms - ms < HOLE_WAIT_MS]
        after = self.after
        for i in sorted(got):
            if i > after:
                holes.extend((h, now_ms) for h in range(max(after + 1, i - MAX_HOLES), i))
                after = i
        return FollowCursor(after, tuple(sorted(holes)[-MAX_HOLES:]))

    @classmethod
    def start(cls, recent_ids: list[int], now_ms: int) -> "FollowCursor":
        """At the newest id, with holes where ids below it may still be in flight."""
        if not recent_ids:
            return cls(0)
        newest, present = max(recent_ids), set(recent_ids)
        low = min(recent_ids)
        holes = tuple((i, now_ms) for i in range(low, newest) if i not in present)
        return cls(newest, holes[-MAX_HOLES:])


def _number(text: str) -> int:
    if _NUMBER.fullmatch(text) is None or int(text) > _MAX_ID:
        raise ValueError(text)
    return int(text)
