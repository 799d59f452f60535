"""The master's side of alerts: channels in etcd, the settings it publishes, test events.

Channels (``alert-channels/<name>`` in etcd, secrets included) are written only here,
by admins through ``/api/v1/alert-channels``, or at start from ``--alerts-file``.
A channel's secrets (a webhook's ``secret``, an email ``password``) are never
returned and never logged; saving a channel without them keeps the stored ones
(the UI never has them to send back), ``null`` removes them.

At start the master publishes the cluster's alert settings (``alerts/settings``:
``repeatS``, the default policy, its ``--public-url`` for links, ``backoffMaxS``)
from the alerts file, and runs a deliverer of its own (``AlertService``), so alerts
are sent even while no worker lives.
"""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path
from typing import Any

import trio

from cluster.alert_delivery import (AlertMetrics, AlertService, DeliveryStatistics,
                                    EtcdAlertSource)
from cluster.alerts import (AlertEvent, AlertKind, AlertSettings, AlertSettingsError,
                            Channel, check_channel_name, parse_channel, parse_policy,
                            unschedulable_event)
from cluster.backoff import Backoff
from cluster.etcd import Etcd, EtcdError

from .context import MasterContext
from .errors import ApiError, BadRequest, NotFound
from .schedulable import SchedulableChanged
from .schedulable_watch import OnSchedulableChanged

__all__ = ["AlertManager", "AlertsFileError", "ChannelNotFound", "MasterAlerts", "UnknownChannel", "load_alerts_file", "unschedulable_hook"]

log = logging.getLogger(__name__)
_SECRETS = ("secret", "password")


class AlertsFileError(Exception):
    """``--alerts-file`` cannot be read or is not valid: one line, at start."""


class ChannelNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"no alert channel {name!r}")


class UnknownChannel(ApiError):
    """A job names a channel that does not exist (the spec itself is valid)."""

    status = 422
    code = "unknown_channel"

    def __init__(self, names: list[str], known: list[str]) -> None:
        super().__init__(f"alerts.channels: no such channel {', '.join(map(repr, names))} "
                         f"(known: {', '.join(known) or 'none'})", field="alerts.channels")


def load_alerts_file(path: str) -> tuple[AlertSettings, dict[str, Channel]]:
    """``{"repeatS", "default", "backoffMaxS", "channels": {NAME: {...}}}``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise AlertsFileError(f"alerts file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise AlertsFileError(f"alerts file {path}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise AlertsFileError(f"alerts file {path}: expected a JSON object")
    unknown = sorted(set(data) - {"repeatS", "default", "backoffMaxS", "channels"})
    if unknown:
        raise AlertsFileError(f"alerts file {path}: unknown key {unknown[0]!r} (known: "
                              "backoffMaxS, channels, default, repeatS)")
    try:
        if data.get("default") is not None:
            parse_policy(data["default"], "default")
        channels = {name: parse_channel(name, c)
                    for name, c in (data.get("channels") or {}).items()}
    except AlertSettingsError as exc:
        raise AlertsFileError(f"alerts file {path}: {exc}") from None
    settings = AlertSettings.from_json(data)
    return settings, channels


class AlertManager:
    """Channels in etcd (the API's), and test events into the outbox."""

    def __init__(self, ctx: MasterContext, etcd: Etcd, runs: Any) -> None:
        self._ctx = ctx
        self._ks = ctx.keyspace
        self._etcd = etcd
        self._runs = runs
        self.source = EtcdAlertSource(etcd, ctx.keyspace, ttl_s=0.5)
        self.service: AlertService | None = None  # the master's deliverer, once built
        try:
            ctx.metrics.registry.register(AlertMetrics("scheduler_master", self.statistics))
        except ValueError:  # a second manager on the same context (tests): counted once
            pass

    def statistics(self) -> DeliveryStatistics:
        return self.service.statistics() if self.service else DeliveryStatistics()

    async def channels(self) -> list[Channel]:
        snapshot = await self._etcd.get_prefix(self._ks.alert_channels_prefix)
        out = []
        for kv in snapshot.kvs:
            name = kv.key.rsplit("/", 1)[-1]
            try:
                out.append(parse_channel(name, json.loads(kv.value)))
            except (ValueError, AlertSettingsError):
                log.warning("alert channel %r in etcd is not valid: not listed", name)
        return out

    async def channel(self, name: str) -> Channel:
        check_channel_name(name)
        kv = await self._etcd.get(self._ks.alert_channel(name))
        if kv is None:
            raise ChannelNotFound(name)
        try:
            return parse_channel(name, json.loads(kv.value))
        except (ValueError, AlertSettingsError):
            raise ChannelNotFound(name) from None

    async def save(self, name: str, document: dict[str, Any]) -> tuple[Channel, bool]:
        """Create or replace; omitted secrets are kept from the stored channel."""
        check_channel_name(name)
        if document.get("name", name) != name:
            raise BadRequest("name", f"{document['name']!r} differs from the path's {name!r}")
        kv = await self._etcd.get(self._ks.alert_channel(name))
        old = json.loads(kv.value) if kv is not None else {}
        merged = {k: v for k, v in document.items() if k != "name"}
        for key in _SECRETS:
            if key not in merged and key in old and old.get("type") == merged.get("type"):
                merged[key] = old[key]
        merged = {k: v for k, v in merged.items() if not (k in _SECRETS and v is None)}
        channel = parse_channel(name, merged)
        await self._etcd.put(self._ks.alert_channel(name), json.dumps(dict(channel.config)))
        return channel, kv is None

    async def delete(self, name: str) -> Channel:
        channel = await self.channel(name)
        await self._etcd.delete(self._ks.alert_channel(name))
        return channel

    async def check_job_channels(self, names: tuple[str, ...]) -> None:
        """UnknownChannel (422) unless every name is a channel."""
        if not names:
            return
        known = sorted(c.name for c in await self.channels())
        missing = [n for n in names if n not in known]
        if missing:
            raise UnknownChannel(missing, known)

    async def unschedulable(self, job: str, reason: str, since_ms: int) -> None:
        """Raise ``unschedulable`` for ``job`` (once per spell: see
        ``cluster.alerts.unschedulable_event``); the job's policy decides where it goes."""
        await self._runs.enqueue_event(unschedulable_event(job, reason, since_ms))
        if self.service is not None:
            self.service.wake()

    async def send_test(self, name: str) -> str:
        """Queue a test event for one channel; the master's deliverer sends it at once."""
        await self.channel(name)
        event = AlertEvent(f"test:{self._ctx.clock()}:{secrets.token_hex(4)}", AlertKind.TEST,
                           "", self._ctx.clock(), 1, reason=f"schedctl alerts test {name}",
                           extra={"channel": name})
        await self._runs.enqueue_alert(event)
        if self.service is not None:
            self.service.wake()
        return event.event_id


class MasterAlerts:
    """The ``alerts`` child: publishes the settings (retried until etcd takes them),
    then runs the master's deliverer."""

    def __init__(self, manager: AlertManager, ctx: MasterContext, etcd: Etcd,
                 file_settings: tuple[AlertSettings, dict[str, Channel]] | None) -> None:
        self._manager = manager
        self._ctx = ctx
        self._etcd = etcd
        self._file = file_settings
        self._service = AlertService(manager.source, ctx.config.db, "master",
                                     settings=ctx.store_settings)
        manager.service = self._service

    def request_stop(self) -> None:
        self._service.request_stop()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await self._publish()
        await self._service.run()

    async def _publish(self) -> None:
        settings, channels = self._file or (AlertSettings(), {})
        settings = AlertSettings(settings.repeat_s, settings.default,
                                 self._ctx.config.public_url, settings.backoff_max_s)
        backoff = Backoff(0.5, 10.0)
        ks = self._ctx.keyspace
        while True:
            try:
                for name, channel in channels.items():
                    await self._etcd.put(ks.alert_channel(name), json.dumps(dict(channel.config)))
                await self._etcd.put(ks.alert_settings, json.dumps(settings.to_json()))
                return
            except EtcdError as exc:
                delay_s = backoff.failed()
                log.warning("alert settings not published (%s); retry in %.1f s", exc, delay_s)
                await trio.sleep(delay_s)


def unschedulable_hook(alerts: AlertManager,
                       then: OnSchedulableChanged | None = None) -> OnSchedulableChanged:
    """The ``SchedulableWatch``'s hook: a job that became unschedulable raises the
    ``unschedulable`` alert, once per spell (the event id is built from when the spell
    began); its return ends nothing (``recovered`` is about runs). ``then``: another
    hook, awaited after (tests)."""
    async def on_change(change: SchedulableChanged) -> None:
        if not change.schedulable:
            await alerts.unschedulable(change.job, change.reason or "", change.since_ms)
        if then is not None:
            await then(change)
    return on_change
