"""``AlertOutbox``: the alert state and the outbox in the run store (DESIGN "Alerts").

Written by whoever writes run records (``observe``, after each batch), read and
updated by deliverers (``claim_due``, ``resolve``, ``mark_sent``, ``mark_failed``).

Idempotent throughout, so that two writers (a worker and a survivor recording the
same run ``lost``, a batch retried after a failure) cannot both alert: a job's state
changes by compare-and-set on its ``version``, in the same transaction as the outbox
row of the event it raises; a record already taken (same run id) or older than the
last one changes nothing (``cluster.alerts.decide``); event ids are derived from the
record, and an outbox row with the same id is left as it is.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import trio

from cluster.alerts import AlertEvent, AlertKind, JobAlertState, decide

from ._alert_schema import (ALERT_PROBE, OUTBOX_COLUMNS, OUTBOX_TABLE, STATE_COLUMNS,
                            STATE_TABLE, alert_create_statements, insert_ignoring)
from ._backend import Backend, Row
from ._errors import StoreQueryError, StoreSchemaError
from ._record import RunRecord

__all__ = ["AlertOutbox", "Delivery", "MAX_DELIVERY_AGE_MS"]

MAX_DELIVERY_AGE_MS: Final = 24 * 3600 * 1000  # retried for up to 24 h, then expired
_CAS_TRIES: Final = 8
# The statuses the flapping rule takes: not ``skipped`` (no run), not ``replaced`` (a
# newer run of the job took its place: neither a failure nor a success of the job).
_WATCHED: Final = frozenset({"succeeded", "failed", "timeout", "lost", "killed"})


@dataclass(frozen=True, slots=True)
class Delivery:
    """One claimed outbox row. ``channel`` '' is an event still to resolve."""

    delivery_id: str
    event: AlertEvent
    channel: str
    attempts: int
    created_ms: int
    claim: str  # the claim token: mark_sent / mark_failed must show it


def _time_ms(record: RunRecord) -> int:
    return record.end_time or record.start_time or record.schedule_time


class AlertOutbox:
    """The alert tables of one RunStore (``RunStore.alerts``); tables made on first use."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._m = backend.dialect.mark
        self._ready = False
        self._lock = trio.Lock()

    async def ensure(self) -> None:
        if self._ready:
            return
        async with self._lock:
            if self._ready:
                return
            try:
                for statement in alert_create_statements(self._backend.dialect.name):
                    await self._backend.execute(statement)
                for probe in ALERT_PROBE:
                    await self._backend.fetch(probe)
            except StoreQueryError as exc:
                raise StoreSchemaError(self._backend.display, exc.reason, OUTBOX_TABLE) from exc
            self._ready = True

    def forget_schema(self) -> None:
        """After an outage: check the tables again (the server may be a new one)."""
        self._ready = False

    # ---- writers of run records

    async def observe(self, records: Sequence[RunRecord], *, repeat_s: float) -> int:
        """Apply the flapping rule to a batch just written; returns events raised.

        One query for the whole batch when every job in it is healthy and succeeded
        (the common case): only a failure, or a record of a failing job, writes."""
        relevant = [r for r in records if r.status.value in _WATCHED]
        if not relevant:
            return 0
        await self.ensure()
        states = await self._states({r.job_name for r in relevant})
        raised = 0
        stale: set[str] = set()  # jobs whose state this batch changed: read again
        for record in sorted(relevant, key=_time_ms):
            job = record.job_name
            if job in stale:
                states.update(await self._states({job}))
                stale.discard(job)
            state = states.get(job)
            if record.status.value == "succeeded" and (state is None or not state.failing):
                continue
            raised += await self._apply(record, state, repeat_s)
            states.pop(job, None)
            stale.add(job)
        return raised

    async def _apply(self, record: RunRecord, state: JobAlertState | None,
                     repeat_s: float) -> int:
        m = self._m
        for _ in range(_CAS_TRIES):
            if state is None:
                await self._backend.execute(
                    insert_ignoring(self._backend.dialect.name, m, STATE_TABLE, ("job_name",)),
                    [record.job_name])
                state = (await self._states({record.job_name}))[record.job_name]
            decision = decide(state, run_id=record.run_id, status=record.status.value,
                              time_ms=_time_ms(record), repeat_s=repeat_s)
            if decision.state == state:
                return 0
            new = decision.state
            guard = (f"UPDATE {STATE_TABLE} SET failing = {m}, failures = {m}, unalerted = {m}, "
                     f"last_alert_ms = {m}, last_time_ms = {m}, last_run_id = {m}, "
                     f"version = version + 1 WHERE job_name = {m} AND version = {m}",
                     [int(new.failing), new.failures, new.unalerted, new.last_alert_ms,
                      new.last_time_ms, new.last_run_id, state.job, state.version])
            then = []
            if decision.kind is not None:
                event = AlertEvent(f"{record.run_id}:{decision.kind.value}", decision.kind,
                                   record.job_name, _time_ms(record), decision.count,
                                   decision.streak, record.to_json())
                then.append(self._insert_event(event))
            if await self._backend.execute_guarded(guard, then):
                return int(decision.kind is not None)
            state = None  # someone else moved it: read again
        return 0

    async def enqueue(self, event: AlertEvent) -> None:
        """Put an event in the outbox (unschedulable, test); a known id is kept as is."""
        await self.ensure()
        sql, params = self._insert_event(event)
        await self._backend.execute(sql, params)

    async def enqueue_for(self, event: AlertEvent, channel: str) -> None:
        """Put an event in the outbox for one channel, due now (a test event)."""
        await self.ensure()
        sql, params = self._insert_event(event, channel, event.time_ms)
        await self._backend.execute(sql, params)

    def _insert_event(self, event: AlertEvent, channel: str = "",
                      now_ms: int | None = None) -> tuple[str, list[Any]]:
        delivery_id = event.event_id if not channel else f"{event.event_id}>{channel}"
        sql = insert_ignoring(self._backend.dialect.name, self._m, OUTBOX_TABLE, OUTBOX_COLUMNS)
        # A channel's row counts its 24 h from when it was made, not from the run.
        made_ms = event.time_ms if now_ms is None else now_ms
        return sql, [delivery_id, event.event_id, event.kind.value, event.job, channel,
                     made_ms, event.to_stored(), "pending", 0, made_ms, "", 0, None, None]

    async def _states(self, jobs: set[str]) -> dict[str, JobAlertState]:
        names = sorted(jobs)
        rows = await self._backend.fetch(
            f"SELECT {', '.join(STATE_COLUMNS)} FROM {STATE_TABLE} WHERE job_name IN "
            f"({', '.join([self._m] * len(names))})", names)
        return {r[0]: JobAlertState(r[0], bool(r[1]), int(r[2]), int(r[3]), int(r[4]),
                                    int(r[5]), r[6], int(r[7])) for r in rows}

    async def state(self, job: str) -> JobAlertState | None:
        await self.ensure()
        return (await self._states({job})).get(job)

    # ---- deliverers

    async def claim_due(self, owner: str, now_ms: int, lease_ms: int,
                        limit: int = 20) -> list[Delivery]:
        """Claim up to ``limit`` due rows for ``lease_ms``: pending, due, and not under
        another deliverer's live lease (a dead deliverer's rows come back after it)."""
        await self.ensure()
        m = self._m
        claim = f"{owner}/{secrets.token_hex(4)}"
        due = await self._backend.fetch(
            f"SELECT delivery_id FROM {OUTBOX_TABLE} WHERE state = 'pending' AND "
            f"next_at_ms <= {m} AND claimed_until_ms <= {m} ORDER BY next_at_ms LIMIT {m}",
            [now_ms, now_ms, limit])
        for (delivery_id,) in due:
            await self._backend.execute(
                f"UPDATE {OUTBOX_TABLE} SET claimed_by = {m}, claimed_until_ms = {m} "
                f"WHERE delivery_id = {m} AND state = 'pending' AND claimed_until_ms <= {m}",
                [claim, now_ms + lease_ms, delivery_id, now_ms])
        rows = await self._backend.fetch(
            f"SELECT delivery_id, payload, channel, attempts, created_ms FROM {OUTBOX_TABLE} "
            f"WHERE claimed_by = {m} AND state = 'pending'", [claim])
        return [Delivery(r[0], AlertEvent.from_stored(r[1]), r[2], int(r[3]), int(r[4]), claim)
                for r in rows]

    async def resolve(self, delivery: Delivery, channels: Sequence[str], now_ms: int) -> None:
        """Turn an unresolved event into one pending row per channel, in one transaction
        (none: the event is ``dropped``)."""
        rows = [self._insert_event(delivery.event, c, now_ms) for c in channels]
        await self._finish(delivery, "resolved" if channels else "dropped", now_ms, rows)

    async def mark_sent(self, delivery: Delivery, now_ms: int) -> None:
        await self._finish(delivery, "sent", now_ms)

    async def mark_dropped(self, delivery: Delivery, now_ms: int, reason: str) -> None:
        await self._finish(delivery, "dropped", now_ms, error=reason)

    async def mark_failed(self, delivery: Delivery, now_ms: int, retry_in_ms: int,
                          error: str) -> bool:
        """Count a failed attempt; due again in ``retry_in_ms``, or ``expired`` past
        24 h. Returns False if it expired."""
        if now_ms + retry_in_ms - delivery.created_ms > MAX_DELIVERY_AGE_MS:
            await self._finish(delivery, "expired", now_ms, error=error)
            return False
        m = self._m
        await self._backend.execute(
            f"UPDATE {OUTBOX_TABLE} SET attempts = attempts + 1, next_at_ms = {m}, "
            f"claimed_until_ms = 0, last_error = {m} WHERE delivery_id = {m} AND claimed_by = {m}",
            [now_ms + retry_in_ms, error[:1000], delivery.delivery_id, delivery.claim])
        return True

    async def _finish(self, delivery: Delivery, state: str, now_ms: int,
                      then: Sequence[tuple[str, list[Any]]] = (), error: str | None = None) -> None:
        m = self._m
        guard = (f"UPDATE {OUTBOX_TABLE} SET state = {m}, sent_ms = {m}, claimed_until_ms = 0, "
                 f"attempts = attempts + 1, last_error = {m} "
                 f"WHERE delivery_id = {m} AND state = 'pending'",
                 [state, now_ms, error and error[:1000], delivery.delivery_id])
        await self._backend.execute_guarded(guard, then)

    async def counts(self) -> dict[tuple[str, str], int]:
        """Rows by (channel, state), for metrics and tests."""
        await self.ensure()
        rows: list[Row] = await self._backend.fetch(
            f"SELECT channel, state, COUNT(*) FROM {OUTBOX_TABLE} GROUP BY channel, state")
        return {(r[0], r[1]): int(r[2]) for r in rows}

    async def rows(self, job: str | None = None) -> list[dict[str, Any]]:
        """Every outbox row (of ``job``), oldest first: for tests and ``schedctl``."""
        await self.ensure()
        m = self._m
        where, params = (f"WHERE job_name = {m}", [job]) if job else ("", [])
        rows = await self._backend.fetch(
            f"SELECT {', '.join(OUTBOX_COLUMNS)} FROM {OUTBOX_TABLE} {where} "
            f"ORDER BY created_ms, delivery_id", params)
        return [dict(zip(OUTBOX_COLUMNS, r)) for r in rows]

    async def recent_events(self, since_ms: int, limit: int) -> list[tuple[str, str, str, int]]:
        """``(event id, kind, job, time ms)`` of the events whose rows were made at or
        after ``since_ms`` (one per event, whatever its channels), oldest first: what
        the master's event stream polls (``master.event_feeds``)."""
        await self.ensure()
        m = self._m
        rows = await self._backend.fetch(
            f"SELECT event_id, MIN(kind), MIN(job_name), MIN(created_ms) FROM {OUTBOX_TABLE} "
            f"WHERE created_ms >= {m} GROUP BY event_id ORDER BY MIN(created_ms) LIMIT {m}",
            [since_ms, limit])
        return [(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]

    async def prune(self, older_than_ms: int) -> int:
        """Delete finished rows created before ``older_than_ms``."""
        await self.ensure()
        return await self._backend.execute(
            f"DELETE FROM {OUTBOX_TABLE} WHERE state <> 'pending' AND created_ms < {self._m}",
            [older_than_ms])
