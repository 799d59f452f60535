"""Alert channels (named, global) and a job's alert policy: their JSON, validated.

A channel is stored in etcd under ``alert-channels/<name>``; its secrets (a webhook's
``secret``, an SMTP password given inline) are kept there, since any worker may
deliver, but ``public_json`` never shows them, and nothing logs a channel whole::

    {"type": "webhook", "url": "https://hooks.example/x", "secret": "...", "format": "json"}
    {"type": "webhook", "url": "https://mattermost.example/hooks/y", "format": "slack"}
    {"type": "email", "host": "smtp.example", "port": 587, "from": "cron@example",
     "to": ["ops@example"], "username": "cron", "passwordFile": "/etc/scheduler/smtp"}

An email password comes from ``passwordFile`` (read on the host that sends) or
``passwordEnv`` (a variable of that host's process), never from a flag.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from ._kinds import JOB_KINDS, AlertKind

__all__ = ["AlertPolicy", "AlertSettingsError", "Channel", "CHANNEL_NAME_RE",
           "DEFAULT_POLICY", "MAX_CHANNELS_PER_JOB", "parse_channel", "parse_policy"]

CHANNEL_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
MAX_CHANNELS_PER_JOB: Final = 16
_EMAIL_RE: Final = re.compile(r"[^@\s]+@[^@\s]+", re.ASCII)
_FORMATS: Final = ("json", "slack")
_WEBHOOK_KEYS: Final = {"type", "url", "secret", "format"}
_EMAIL_KEYS: Final = {"type", "host", "port", "from", "to", "username", "password",
                      "passwordFile", "passwordEnv", "starttls", "caFile"}
_SECRET_KEYS: Final = ("secret", "password")


class AlertSettingsError(ValueError):
    """A channel or an alert policy that is not valid; ``field`` names the JSON field."""

    def __init__(self, field_: str, reason: str) -> None:
        self.field = field_
        self.reason = reason
        super().__init__(f"{field_}: {reason}")


@dataclass(frozen=True, slots=True)
class Channel:
    """One named channel. ``config`` is its JSON, validated (secrets included)."""

    name: str
    type: str  # webhook | email
    config: Mapping[str, Any] = field(hash=False, compare=True)

    def public_json(self) -> dict[str, Any]:
        """What the API shows: no secret, only whether one is set."""
        shown = {k: v for k, v in self.config.items() if k not in _SECRET_KEYS}
        shown["name"] = self.name
        if self.type == "webhook":
            shown["hasSecret"] = bool(self.config.get("secret"))
        return shown

    def __repr__(self) -> str:  # never the secrets
        return f"Channel({self.name!r}, {self.type!r})"


def check_channel_name(name: object, where: str = "name") -> str:
    if not isinstance(name, str) or not CHANNEL_NAME_RE.fullmatch(name):
        raise AlertSettingsError(where, f"a channel name must match {CHANNEL_NAME_RE.pattern}")
    return name


def _text(data: Mapping[str, Any], key: str, *, required: bool = False,
          max_chars: int = 2048) -> str | None:
    if key not in data:
        if required:
            raise AlertSettingsError(key, "required")
        return None
    value = data[key]
    if not isinstance(value, str) or not value or len(value) > max_chars:
        raise AlertSettingsError(key, f"a non-empty string of at most {max_chars} characters")
    return value


def parse_channel(name: str, data: object) -> Channel:
    """A channel from its JSON; AlertSettingsError names the field at fault."""
    check_channel_name(name)
    if not isinstance(data, Mapping):
        raise AlertSettingsError("channel", "expected a JSON object")
    kind = data.get("type")
    if kind == "webhook":
        allowed = _WEBHOOK_KEYS
        url = _text(data, "url", required=True)
        parts = urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AlertSettingsError("url", "an http:// or https:// URL with a host")
        _text(data, "secret", max_chars=256)
        if data.get("format", "json") not in _FORMATS:
            raise AlertSettingsError("format", "json or slack")
    elif kind == "email":
        allowed = _EMAIL_KEYS
        _text(data, "host", required=True, max_chars=255)
        port = data.get("port", 587)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise AlertSettingsError("port", "a TCP port number")
        sender = _text(data, "from", required=True, max_chars=255)
        if not _EMAIL_RE.fullmatch(sender or ""):
            raise AlertSettingsError("from", "an email address")
        to = data.get("to")
        if (not isinstance(to, list) or not to or len(to) > 32
                or not all(isinstance(a, str) and _EMAIL_RE.fullmatch(a) for a in to)):
            raise AlertSettingsError("to", "a list of 1 to 32 email addresses")
        for key in ("username", "password", "passwordFile", "passwordEnv", "caFile"):
            _text(data, key, max_chars=1024)
        if not isinstance(data.get("starttls", True), bool):
            raise AlertSettingsError("starttls", "a boolean")
    else:
        raise AlertSettingsError("type", "webhook or email")
    unknown = sorted(set(data) - allowed - {"name"})
    if unknown:
        raise AlertSettingsError(unknown[0], "unknown field (known: "
                                 + ", ".join(sorted(allowed)) + ")")
    return Channel(name, kind, {k: v for k, v in data.items() if k != "name"})


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """Which events of a job alert, and where: a job's ``alerts`` or the default."""

    on: frozenset[AlertKind] = frozenset(JOB_KINDS)
    channels: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"on": [k.value for k in JOB_KINDS if k in self.on],
                "channels": list(self.channels)}

    def wants(self, kind: AlertKind) -> bool:
        return kind is AlertKind.TEST or kind in self.on


DEFAULT_POLICY: Final = AlertPolicy()


def parse_policy(data: object, where: str = "alerts") -> AlertPolicy:
    """A policy from ``{"on": [...], "channels": [...]}``; both keys optional."""
    if isinstance(data, AlertPolicy):
        return data
    if not isinstance(data, Mapping):
        raise AlertSettingsError(where, "expected an object {on: [...], channels: [...]}")
    unknown = sorted(set(data) - {"on", "channels"})
    if unknown:
        raise AlertSettingsError(f"{where}.{unknown[0]}", "unknown field (known: channels, on)")
    on = data.get("on", [k.value for k in JOB_KINDS])
    if not isinstance(on, list):
        raise AlertSettingsError(f"{where}.on", "a list of events")
    kinds = set()
    for item in on:
        if item not in {k.value for k in JOB_KINDS}:
            raise AlertSettingsError(f"{where}.on", f"unknown event {item!r} (known: "
                                     + ", ".join(k.value for k in JOB_KINDS) + ")")
        kinds.add(AlertKind(item))
    channels = data.get("channels", [])
    if not isinstance(channels, list) or len(channels) > MAX_CHANNELS_PER_JOB:
        raise AlertSettingsError(f"{where}.channels",
                                 f"a list of at most {MAX_CHANNELS_PER_JOB} channel names")
    for name in channels:
        check_channel_name(name, f"{where}.channels")
    return AlertPolicy(frozenset(kinds), tuple(dict.fromkeys(channels)))
