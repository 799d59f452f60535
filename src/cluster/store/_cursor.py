"""Opaque page cursors for keyset pagination.

A cursor names the last row of a page by its ordering key ``(sort_time, id)``; the
next page is every row strictly after it in ``sort_time DESC, id DESC`` order. Unlike
OFFSET, a page costs the same however deep it is, and rows written meanwhile (which
sort first) neither shift nor duplicate the following pages.

A cursor comes back from a client, so decoding trusts nothing: both numbers must be
plain decimals that fit the columns (signed 64-bit); anything else, a number that would
overflow the database's integer included, is an InvalidCursor (a 400), not a crash.
"""

from __future__ import annotations

import base64
import binascii
import re

from ._errors import InvalidCursor

_VERSION = "k1"
_INT64 = re.compile(r"-?[0-9]{1,19}", re.ASCII)
_INT64_RANGE = range(-(2**63), 2**63)


def encode_cursor(sort_time: int, row_id: int) -> str:
    raw = f"{_VERSION}:{sort_time}:{row_id}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    """``(sort_time, id)`` of the row the cursor names; InvalidCursor if malformed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        version, *numbers = raw.split(":")
        if version != _VERSION or len(numbers) != 2:
            raise ValueError(version)
        sort_time, row_id = (_int64(n) for n in numbers)
        return sort_time, row_id
    except (ValueError, binascii.Error, UnicodeDecodeError, TypeError):
        raise InvalidCursor(str(cursor)) from None


def _int64(text: str) -> int:
    if _INT64.fullmatch(text) is None or int(text) not in _INT64_RANGE:
        raise ValueError(text)
    return int(text)
