"""Hiding the password of a database URL, for error messages and logs."""

from __future__ import annotations

import re

# Greedy up to the last "@": a password may itself hold "@", "/" or ":".
_PASSWORD = re.compile(r"(://[^/:@]*:).*@")


def redact_db_url(url: str) -> str:
    """Hide the password of anything shaped like scheme://user:password@...

    Works on any text, parsable or not, so a bad URL can be shown in its own error.
    """
    return _PASSWORD.sub(r"\1***@", url)
