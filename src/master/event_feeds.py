"""EventFeeds: what changed in etcd and in the run store, published to the EventHub.

A supervisor child with three loops, each resuming from the position it keeps in the
hub (so a restarted child misses nothing and repeats nothing):

- **etcd**: one watch on the whole keyspace prefix, from a read of ``jobs/``. Job
  saves and deletions (``job.saved``, ``job.paused``/``job.resumed`` when the save
  flipped ``paused``, ``job.deleted``), runs claimed (``run.started``: a ``running/``
  key appearing), workers (``worker.joined``/``worker.left``: a ``workers/`` key
  appearing or vanishing with its lease). Its position is ``(revision, events of it
  handed over)``: a transaction writes several keys at one revision, and a restart
  between two of them must neither repeat the first nor skip the second. History
  compacted away: the hub publishes ``reset`` and the loop reads again.
- **store**: the run store's follow cursor (``store._follow``: each record once, in
  the order it lands, holes waited for): ``run.finished``, every ``FOLLOW_POLL_S``
  while caught up, at once while not.
- **alerts**: the alert outbox every ``ALERT_POLL_S``, events raised within the last
  ``ALERT_WINDOW_MS`` not seen yet (``alert``). Best effort: an alert of a record that
  reaches the store later than that (a spill replayed after a long outage) is not
  streamed (the outbox still delivers it).

The store and the alert loops wait while the store is down (retried with backoff);
the etcd loop while etcd is (the watch resumes by itself).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Final

import trio

from cluster.backoff import Backoff
from cluster.etcd import Etcd, EtcdError, EventType, WatchCompacted, WatchEvent
from cluster.keyspace import JobKey, RunningKey, WorkerKey
from cluster.mirror import read_prefix
from cluster.presence import PresenceDecodeError, RunningInfo, WorkerInfo, is_seed_registration
from cluster.store import RunRecord, StoreError

from .context import MasterContext
from .errors import ApiError
from .events import EventHub
from .runs import FOLLOW_FROM_NOW, LogManager, RunQuery

__all__ = ["ALERT_POLL_S", "EventFeeds", "FOLLOW_POLL_S", "run_summary"]

log = logging.getLogger(__name__)

FOLLOW_POLL_S: Final = 0.2  # a finished run reaches the streams within this (+ a query)
FOLLOW_PAGE: Final = 1000
POSITION_WAIT_S: Final = 2.0  # the tree's start waits this long for etcd, no longer
ALERT_POLL_S: Final = 1.0
ALERT_WINDOW_MS: Final = 5 * 60 * 1000
ALERT_PAGE: Final = 500
RETRY_S, RETRY_MAX_S = 0.2, 5.0


def run_summary(record: RunRecord) -> dict[str, Any]:
    """A finished run without its command and output (those are a GET away)."""
    return {"job": record.job_name, "runId": record.run_id, "worker": record.worker,
            "status": str(record.status), "exitCode": record.exit_code,
            "trigger": str(record.trigger), "attempt": record.attempt,
            "planTime": record.plan_time, "startTime": record.start_time,
            "endTime": record.end_time}


class EventFeeds:
    """The supervisor child that feeds ``hub``; build a fresh one per (re)start."""

    def __init__(self, hub: EventHub, ctx: MasterContext, etcd: Etcd, runs: LogManager) -> None:
        self._hub, self._ctx, self._etcd, self._runs = hub, ctx, etcd, runs
        self._stop = trio.Event()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Reports started once the etcd loop is positioned, or after POSITION_WAIT_S
        (etcd unreachable: the master starts anyway, DESIGN §12; the streams opened
        before it is positioned are told ``reset`` when it is)."""
        positioned = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._follow_etcd, positioned)
            nursery.start_soon(self._follow_store)
            nursery.start_soon(self._follow_alerts)
            with trio.move_on_after(POSITION_WAIT_S):
                await positioned.wait()
            task_status.started()
            await self._stop.wait()
            self._hub.close_all()
            nursery.cancel_scope.cancel()

    # ---- etcd

    async def _follow_etcd(self, positioned: trio.Event) -> None:
        """Sets ``positioned`` once every later change will be published."""
        hub, keyspace = self._hub, self._ctx.keyspace
        refused = Backoff(RETRY_S, RETRY_MAX_S)
        while True:
            if hub.etcd_position is None:
                snapshot = await read_prefix(self._etcd, keyspace.jobs_prefix)
                hub.job_paused = {}
                for kv in snapshot.kvs:
                    if (name := keyspace.name_from_job_key(kv.key)) is not None:
                        hub.job_paused[name] = _paused(kv.value)
                hub.etcd_position = (snapshot.revision + 1, 0)
                if hub.early_readers:  # they were told "ready" before this read
                    hub.early_readers = False
                    hub.reset("the event feed was not following etcd yet: reload")
            positioned.set()
            revision, handed = hub.etcd_position
            try:
                async with self._etcd.watch_prefix(keyspace.prefix,
                                                   start_revision=revision) as events:
                    async for event in events:
                        refused.succeeded()
                        if event.revision == revision and handed > 0:
                            handed -= 1  # handed over before a restart
                            continue
                        self._publish_change(event)
                        rev, n = hub.etcd_position
                        hub.etcd_position = (rev, n + 1) if event.revision == rev \
                            else (event.revision, 1)
            except WatchCompacted as exc:
                log.warning("events: etcd history compacted (%s): clients reload", exc)
                hub.etcd_position = None
                hub.reset("etcd history was compacted: reload")
            except EtcdError as exc:
                delay_s = refused.failed()
                log.warning("events: watch refused (%s); again in %.1f s", exc, delay_s)
                await trio.sleep(delay_s)

    def _publish_change(self, event: WatchEvent) -> None:
        hub, put = self._hub, event.type is EventType.PUT
        match self._ctx.keyspace.parse(event.key):
            case JobKey(name):
                if not put:
                    hub.job_paused.pop(name, None)
                    hub.publish("job.deleted", name, {"job": name})
                    return
                paused, was = _paused(event.value), hub.job_paused.get(name)
                hub.job_paused[name] = paused
                kind = "job.saved" if was is None or was == paused else \
                    ("job.paused" if paused else "job.resumed")
                hub.publish(kind, name, {"job": name, "created": event.kv.version == 1,
                                         "paused": paused})
            case RunningKey(name, run_id) if put and event.kv.version == 1:
                data: dict[str, Any] = {"job": name, "runId": run_id}
                try:
                    info = RunningInfo.from_bytes(event.value)
                    data |= {"worker": info.worker_id, "planTime": info.planned_ms,
                             "attempt": info.attempt, "trigger": info.trigger,
                             "state": info.state}
                except PresenceDecodeError:
                    pass
                hub.publish("run.started", name, data)
            case WorkerKey(worker_id) if not put:
                hub.publish("worker.left", None, {"worker": worker_id})
            case WorkerKey(worker_id) if event.kv.version == 1:
                joined: dict[str, Any] = {"worker": worker_id}
                if not is_seed_registration(event.value):
                    try:
                        info_w = WorkerInfo.from_bytes(event.value)
                        joined |= {"host": info_w.host, "labels": dict(info_w.labels)}
                    except PresenceDecodeError:
                        pass
                hub.publish("worker.joined", None, joined)
            case _:
                pass

    # ---- the run store

    async def _follow_store(self) -> None:
        hub, backoff = self._hub, Backoff(RETRY_S, RETRY_MAX_S)
        query = RunQuery(limit=FOLLOW_PAGE)
        while True:
            try:
                if hub.store_cursor is None:
                    hub.store_cursor = (await self._runs.follow_runs(query, FOLLOW_FROM_NOW)).after
                page = await self._runs.follow_runs(query, hub.store_cursor)
            except (StoreError, ApiError) as exc:
                await self._wait_store(backoff, exc)
                continue
            backoff.succeeded()
            for record in page.records:
                hub.publish("run.finished", record.job_name, run_summary(record))
            hub.store_cursor = page.after
            if page.caught_up:
                await trio.sleep(FOLLOW_POLL_S)

    async def _follow_alerts(self) -> None:
        hub, backoff = self._hub, Backoff(RETRY_S, RETRY_MAX_S)
        while True:
            since = self._ctx.clock() - ALERT_WINDOW_MS
            try:
                rows = await self._runs.recent_alerts(since, ALERT_PAGE)
            except (StoreError, ApiError) as exc:
                await self._wait_store(backoff, exc)
                continue
            backoff.succeeded()
            seen, primed = hub.alert_seen, hub.alerts_primed
            for event_id, kind, job, time_ms in rows:
                if event_id not in seen:
                    seen[event_id] = time_ms
                    if primed:  # the first look only learns what was there before
                        hub.publish("alert", job, {"job": job, "kind": kind,
                                                   "alertId": event_id, "time": time_ms})
            hub.alerts_primed = True
            for event_id in [e for e, t in seen.items() if t < since]:
                del seen[event_id]
            await trio.sleep(ALERT_POLL_S)

    async def _wait_store(self, backoff: Backoff, exc: Exception) -> None:
        delay_s = backoff.failed()
        log.debug("events: run store unavailable (%s); again in %.1f s", exc, delay_s)
        await trio.sleep(delay_s)


def _paused(value: bytes) -> bool:
    try:
        document = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(document, dict) and document.get("paused") is True
