"""Bearer-token authentication, and the rule that keeps an open API on loopback.

The token comes from the config (``--token`` / ``SCHEDULER_API_TOKEN``); it is
compared in constant time and never logged. A missing and a wrong token get the same
answer (no oracle). Without a token the API is open, so the master refuses to listen
anywhere but loopback.
"""

from __future__ import annotations

import hmac
import ipaddress

from cluster.config import Config

__all__ = ["BearerAuth", "ExposureRefused", "check_exposure", "is_loopback"]


class ExposureRefused(Exception):
    """The config would serve an unauthenticated API beyond this machine."""

    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__(
            f"refusing to listen on non-loopback host {host!r} without an API token: "
            f"set --token (or SCHEDULER_API_TOKEN), or listen on 127.0.0.1")


class BearerAuth:
    """Checks ``Authorization: Bearer <token>`` headers against one token."""

    __slots__ = ("_expected",)

    def __init__(self, token: str | None) -> None:
        self._expected = None if token is None else token.encode("utf-8")

    @property
    def enabled(self) -> bool:
        return self._expected is not None

    def allows(self, authorization: str | None) -> bool:
        if self._expected is None:
            return True
        if not authorization:
            return False
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(credentials.strip().encode("utf-8", "surrogateescape"),
                                   self._expected)

    def __repr__(self) -> str:
        return f"BearerAuth(enabled={self.enabled})"  # never the token


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1); names other
    than localhost count as exposed, whatever they resolve to today."""
    text = host.strip().strip("[]")
    if text.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def check_exposure(config: Config) -> None:
    if config.api_token is None and not is_loopback(config.api_host):
        raise ExposureRefused(config.api_host)
