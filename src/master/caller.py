"""The Identity of the request being answered, set by the app's auth hook.

Handlers that change something pass it to the JobManager, which writes it into the
audit entry of that change (DESIGN §4 ``audit/``). Kept in Quart's per-request ``g``.
"""

from __future__ import annotations

from quart import g

from .auth import Identity

__all__ = ["caller", "set_caller"]


def set_caller(identity: Identity) -> None:
    g.caller = identity


def caller() -> Identity:
    """Who made this request; only routes behind the auth hook have one."""
    identity = g.get("caller")
    if not isinstance(identity, Identity):  # a public route changes nothing
        raise RuntimeError("no authenticated caller for this request")
    return identity
