"""Where a deliverer learns the channels, the settings and a job's policy: etcd.

Read on demand and kept for ``ttl_s`` (a channel saved through the API is used within
a few seconds); a failed read keeps the last answer, so an etcd hiccup delays no alert
that was already resolvable.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Final, Protocol

import trio

from cluster.alerts import (DEFAULT_POLICY, AlertEvent, AlertKind, AlertPolicy,
                            AlertSettings, AlertSettingsError, Channel, parse_channel,
                            parse_policy)
from cluster.etcd import Etcd, EtcdError
from cluster.keyspace import Keyspace
from cluster.spec import JobSpec, SpecError

__all__ = ["AlertSource", "EtcdAlertSource", "channels_wanted"]

log = logging.getLogger(__name__)
CACHE_S: Final = 2.0


class AlertSource(Protocol):
    async def settings(self) -> AlertSettings: ...
    async def channels(self) -> dict[str, Channel]: ...
    async def job_policy(self, job: str) -> AlertPolicy | None: ...


async def channels_wanted(source: AlertSource, event: AlertEvent) -> list[str]:
    """The channels an event goes to: the job's policy, else the default policy."""
    if event.kind is AlertKind.TEST:
        return [str(event.extra.get("channel", ""))]
    policy = await source.job_policy(event.job)
    if policy is None:
        default = (await source.settings()).default
        try:
            policy = DEFAULT_POLICY if default is None else parse_policy(default, "default")
        except AlertSettingsError:
            policy = DEFAULT_POLICY
    if not policy.wants(event.kind):
        return []
    known = await source.channels()
    return [name for name in policy.channels if name in known]


class EtcdAlertSource:
    """The etcd-backed source (module doc). ``repeat_s`` is the last known setting,
    readable without I/O by the writer of run records."""

    def __init__(self, etcd: Etcd, keyspace: Keyspace, *, ttl_s: float = CACHE_S) -> None:
        self._etcd = etcd
        self._keyspace = keyspace
        self._ttl_s = ttl_s
        self._settings = AlertSettings()
        self._settings_at = -math.inf
        self._channels: dict[str, Channel] = {}
        self._channels_at = -math.inf

    @property
    def repeat_s(self) -> float:
        return self._settings.repeat_s

    async def settings(self) -> AlertSettings:
        if trio.current_time() - self._settings_at > self._ttl_s:
            try:
                kv = await self._etcd.get(self._keyspace.alert_settings)
                self._settings = AlertSettings.from_json(json.loads(kv.value) if kv else None)
                self._settings_at = trio.current_time()
            except (EtcdError, ValueError) as exc:
                log.debug("alert settings not read: %s", exc)
        return self._settings

    async def channels(self) -> dict[str, Channel]:
        if trio.current_time() - self._channels_at > self._ttl_s:
            try:
                snapshot = await self._etcd.get_prefix(self._keyspace.alert_channels_prefix)
            except EtcdError as exc:
                log.debug("alert channels not read: %s", exc)
                return self._channels
            found = {}
            for kv in snapshot.kvs:
                name = kv.key.rsplit("/", 1)[-1]
                try:
                    found[name] = parse_channel(name, json.loads(kv.value))
                except (ValueError, AlertSettingsError) as exc:
                    log.warning("alert channel %r in etcd is not valid (%s): ignored", name,
                                getattr(exc, "field", type(exc).__name__))
            self._channels, self._channels_at = found, trio.current_time()
        return self._channels

    async def job_policy(self, job: str) -> AlertPolicy | None:
        try:
            kv = await self._etcd.get(self._keyspace.job(job))
        except ValueError:
            return None
        if kv is None:
            return None
        try:
            return JobSpec.from_json(kv.value).alerts
        except SpecError:
            return None
