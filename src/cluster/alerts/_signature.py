"""The webhook signature: ``X-Scheduler-Signature: t=<unix>,v1=<hex>``.

``v1`` is the hex HMAC-SHA256, keyed with the channel's secret, of ``"<t>." + body``
(Stripe's scheme): a receiver checks who sent the body and, from ``t``, that it is
fresh (a replayed request is refused once ``t`` is older than its tolerance).
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["HEADER", "SignatureError", "sign", "verify"]

HEADER = "X-Scheduler-Signature"
DEFAULT_TOLERANCE_S = 300


class SignatureError(ValueError):
    """A signature header that is missing, malformed, stale or does not match."""


def _mac(secret: str, t: int, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, t: int) -> str:
    """The header's value for ``body`` sent at unix time ``t``."""
    return f"t={t},v1={_mac(secret, t, body)}"


def verify(header: str | None, body: bytes, secret: str, *, now: float,
           tolerance_s: float = DEFAULT_TOLERANCE_S) -> int:
    """Check a header as a receiver does; returns its ``t``, raises SignatureError."""
    if not header:
        raise SignatureError(f"no {HEADER} header")
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise SignatureError(f"malformed {HEADER}: {header[:80]!r}") from None
    if abs(now - t) > tolerance_s:
        raise SignatureError(f"stale signature: t={t} is {now - t:.0f} s from now")
    if not hmac.compare_digest(given, _mac(secret, t, body)):
        raise SignatureError("signature does not match the body")
    return t
