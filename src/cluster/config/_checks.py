"""The range checks of the settings table: each returns why a value is wrong, or None.

A check sees a value already of the field's type; it says only what is out of range,
and the caller adds the field and where the value came from.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from ._errors import BadDbUrl, BadEndpoint
from ._labels import Labels
from ._urls import parse_db_url, parse_endpoint

Check = Callable[[Any], "str | None"]


def port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be a TCP port in 0..65535 (0 = any free port)"


def positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def claim_lead(value: float) -> str | None:
    # Longer leads buy nothing (a claim takes milliseconds) and stretch the window in
    # which a kill or a pause meets an already-claimed fire; a slow etcd lengthens the
    # lead by itself while it lasts (``worker.claim_lead``, at most 1 s).
    return None if 0 <= value <= 0.5 else "must be between 0 and 0.5 seconds"


def at_least_one(value: int) -> str | None:
    return None if value >= 1 else "must be at least 1"


def shard_slots(value: int) -> str | None:
    return None if 0 <= value <= 65_536 else "must be 0 (no setting) or 1..65536"


def non_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def prefix(value: str) -> str | None:
    if value.startswith("/") and value.endswith("/") and "//" not in value \
            and not any(c.isspace() for c in value):
        return None
    return "must start and end with '/', without '//' or spaces (e.g. /cron/)"


def endpoints(value: tuple[str, ...]) -> str | None:
    if not value:
        return "needs at least one host:port"
    for text in value:
        try:
            parse_endpoint(text)
        except BadEndpoint as exc:
            return exc.reason
    return None


def db_url(value: str) -> str | None:
    try:
        parse_db_url(value)
    except BadDbUrl as exc:
        return exc.reason
    return None


# A worker id is the last segment of /cron/workers/<id>: no '/', bounded length.
_WORKER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9._/-]{0,63}$")


def worker_id(value: str) -> str | None:
    if _WORKER_ID.match(value):
        return None
    return "must match [A-Za-z0-9][A-Za-z0-9._:-]{0,127} (it is part of etcd keys)"


def labels(value: Labels) -> str | None:
    for key, label in value.items():
        if not _LABEL_KEY.match(key):
            return f"label key {key!r} must match [A-Za-z0-9][A-Za-z0-9._/-]{{0,62}}"
        if not _LABEL_VALUE.match(label):
            return f"label value {label!r} (of {key!r}) must match [A-Za-z0-9._/-]{{0,63}}"
    return None


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def log_level(value: str) -> str | None:
    return None if value in _LOG_LEVELS else f"must be one of {', '.join(_LOG_LEVELS)}"


def token(value: str) -> str | None:
    if value and not any(c.isspace() for c in value):
        return None
    return "must be non-empty, without spaces (unset it to disable auth)"


def absolute_path(value: str) -> str | None:
    return None if value.startswith("/") else "must be an absolute path"


# RFC 1123 host names, or an IPv4/IPv6 literal (brackets optional); a leading '.'
# allows every subdomain of the name.
_HOST_NAME = re.compile(r"^\.?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$")


def host_names(value: tuple[str, ...]) -> str | None:
    for name in value:
        bare = name.strip("[]")
        if not (_HOST_NAME.match(bare) or ":" in bare and all(
                c in "0123456789abcdefABCDEF:." for c in bare)):
            return f"{name!r} is not a host name or address (no port, no scheme)"
    return None


def public_url(value: str) -> str | None:
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    if parts.username or parts.password or parts.query or parts.fragment:
        return "must be a plain URL: no user, password, query or fragment"
    return None


# POSIX portable user names (useradd's rule), as getpwnam will look them up.
_USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}\$?$")


def user_name(value: str) -> str | None:
    if _USER_NAME.match(value):
        return None
    return "must be a user name ([a-z_][a-z0-9_-]{0,31})"


def user_names(value: tuple[str, ...]) -> str | None:
    for name in value:
        if reason := user_name(name):
            return f"{name!r}: {reason}"
    return None
