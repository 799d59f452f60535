"""Opaque page cursors for keyset pagination.

A cursor names the last row of a page by its ordering key ``(sort_time, id)``; the
next page is every row strictly after it in ``sort_time DESC, id DESC`` order. Unlike
OFFSET, a page costs the same however deep it is, and rows written meanwhile (which
sort first) neither shift nor duplicate the following pages.
"""

from __future__ import annotations

import base64
import binascii

from ._errors import InvalidCursor

_VERSION = "k1"


def encode_cursor(sort_time: int, row_id: int) -> str:
    raw = f"{_VERSION}:{sort_time}:{row_id}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    """``(sort_time, id)`` of the row the cursor names; InvalidCursor if malformed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        version, sort_time, row_id = raw.split(":")
        if version != _VERSION:
            raise ValueError(version)
        return int(sort_time), int(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError, TypeError):
        raise InvalidCursor(str(cursor)) from None
