"""``AlertOutbox``: the alert state and the outbox in the run store (DESIGN "Alerts").

Written by whoever writes run records (``write_deciding``: the records and their
alert decisions in one transaction), read and updated by deliverers (``claim_due``,
``resolve``, ``mark_sent``, ``mark_failed``).

Idempotent throughout, so that two writers (a worker and a survivor recording the
same run ``lost``, a batch retried after a failure) cannot both alert: a job's state
changes by compare-and-set on its ``version``, in the same transaction as the outbox
rows of the events it raises and the records that raised them; a record already
taken (same run id) or older than the last one changes nothing
(``cluster.alerts.decide``); event ids are derived from the record, and an outbox row
with the same id is left as it is. A batch whose compare-and-set loses ``_CAS_TRIES``
times in a row fails with ``StoreUnavailable``: it is written again later, never
given up.

Order: a job's rows for one channel are delivered one after another, in event time
(``claim_due``): the next waits while an earlier one is pending, retries included.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import trio

from cluster.alerts import AlertEvent, JobAlertState, decide, excerpt

from ._alert_schema import (ALERT_PROBE, EVENT_MS, OUTBOX_COLUMNS, OUTBOX_TABLE,
                            STATE_COLUMNS, STATE_TABLE, alert_create_statements,
                            insert_ignoring)
from ._backend import Backend, Batch, Row, Statement
from ._errors import StoreQueryError, StoreSchemaError, StoreUnavailable
from ._record import RunRecord

__all__ = ["AlertOutbox", "Delivery", "MAX_DELIVERY_AGE_MS"]

MAX_DELIVERY_AGE_MS: Final = 24 * 3600 * 1000  # retried for up to 24 h, then expired
_CAS_TRIES: Final = 8
_NEVER: Final = 2**63  # later than any event
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


def _stored_run(record: RunRecord) -> dict[str, Any]:
    """The run as the event carries it: output and stderr cut to the excerpt a channel
    sends (``cluster.alerts.excerpt``), so that an outbox row stays small whatever the
    run printed, and cannot fail the transaction that writes the run."""
    run = record.to_json()
    for key in ("output", "err"):
        if isinstance(run.get(key), str):
            run[key] = excerpt(run[key])
    return run


def _first_due(pending: Sequence[Row], now_ms: int) -> list[str]:
    """The ids of the pending rows to send now, oldest due first.

    Order per job and channel: rows (``delivery_id, event_id, job, channel, event ms,
    next_at_ms, claimed_until_ms``) go one after another in event time (ties by event
    id), so a receiver never gets a job's ``recovered`` before the failure it ends: a
    row waits while an earlier one of its job and channel is pending, whether in
    flight, or failed and due again later (order holds across retries), or not yet
    resolved into channels (``channel`` ''). Unresolved rows never wait: resolving
    sends nothing. Different jobs and channels never wait for one another. Events of a
    job are made in time order (``decide`` takes no older record), so an earlier row
    never appears after a later one was sent."""
    first: dict[tuple[str, str], tuple[int, str]] = {}
    for _, event_id, job, channel, event_ms, _, _ in pending:
        key = (int(event_ms or 0), event_id)
        if key < first.get((job, channel), (_NEVER, "")):
            first[(job, channel)] = key
    due = []
    for delivery_id, event_id, job, channel, event_ms, next_at_ms, claimed_until in pending:
        if next_at_ms > now_ms or claimed_until > now_ms:
            continue
        key = (int(event_ms or 0), event_id)
        if channel and (key != first[(job, channel)]
                        or first.get((job, ""), (_NEVER, "")) < key):
            continue
        due.append((int(next_at_ms), delivery_id))
    return [delivery_id for _, delivery_id in sorted(due)]


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

    async def write_deciding(self, records: Sequence[RunRecord], batch: Batch | None, *,
                             repeat_s: float) -> int:
        """Write ``batch`` (the records' rows) and apply the flapping rule to
        ``records`` in one transaction; returns events raised (``batch`` None: decide
        only, for records already stored).

        One transaction, so that no record is ever durable without its alert decided:
        a writer that dies between the two would leave a failure nobody hears of (its
        running key released or not, a survivor's ``lost`` record never replaces the
        real one). The job states are read first, the decisions made, and the
        transaction commits only if no state moved meanwhile (compare-and-set on each
        ``version``); else everything rolls back and is decided again. The common case,
        every job of the batch healthy and succeeded, is one query and the batch."""
        relevant = [r for r in records if r.status.value in _WATCHED]
        if relevant:
            await self.ensure()
        for _ in range(_CAS_TRIES):
            guards, events = await self._plan(relevant, repeat_s) if relevant else ([], [])
            if not guards:
                if batch is not None:
                    await self._backend.executemany(*batch)
                return 0
            then = [self._insert_event(e) for e in events]
            if await self._backend.transaction(guards, batch, then):
                return len(events)
        # Never give the records up (an alert due would be lost): the batch fails, and
        # its writer writes it again after a backoff (idempotent).
        jobs = sorted({r.job_name for r in relevant})
        raise StoreUnavailable(self._backend.display, f"the alert state of job(s) "
                               f"{', '.join(map(repr, jobs))} changed under {_CAS_TRIES} tries")

    async def observe(self, records: Sequence[RunRecord], *, repeat_s: float) -> int:
        """Apply the flapping rule to records already stored (``write_deciding``
        without a batch); returns events raised. Idempotent."""
        return await self.write_deciding(records, None, repeat_s=repeat_s)

    async def _plan(self, relevant: Sequence[RunRecord],
                    repeat_s: float) -> tuple[list[Statement], list[AlertEvent]]:
        """Each job's new state, as a compare-and-set on its version (ordered by job,
        so that two writers lock state rows in one order), and the events raised (in
        time order). A job without a state row gets a default one first, outside the
        transaction: a default row says nothing, whoever wins."""
        states = await self._states({r.job_name for r in relevant})
        now: dict[str, JobAlertState] = dict(states)
        events: list[AlertEvent] = []
        for record in sorted(relevant, key=_time_ms):
            job = record.job_name
            state = now.get(job)
            if record.status.value == "succeeded" and (state is None or not state.failing):
                continue  # healthy, and stays so: no state written
            state = state or JobAlertState(job)
            decision = decide(state, run_id=record.run_id, status=record.status.value,
                              time_ms=_time_ms(record), repeat_s=repeat_s)
            now[job] = decision.state
            if decision.kind is not None:
                events.append(AlertEvent(f"{record.run_id}:{decision.kind.value}",
                                         decision.kind, job, _time_ms(record),
                                         decision.count, decision.streak,
                                         _stored_run(record)))
        guards: list[Statement] = []
        for job in sorted(now):
            new, old = now[job], states.get(job)
            if new == old:
                continue
            if old is None:
                await self._backend.execute(
                    insert_ignoring(self._backend.dialect.name, self._m, STATE_TABLE,
                                    ("job_name",)), [job])
                old = JobAlertState(job)
            guards.append(self._guard(old, new))
        return guards, events

    def _guard(self, old: JobAlertState, new: JobAlertState) -> Statement:
        m = self._m
        return (f"UPDATE {STATE_TABLE} SET failing = {m}, failures = {m}, unalerted = {m}, "
                f"last_alert_ms = {m}, last_time_ms = {m}, last_run_id = {m}, "
                f"version = version + 1 WHERE job_name = {m} AND version = {m}",
                [int(new.failing), new.failures, new.unalerted, new.last_alert_ms,
                 new.last_time_ms, new.last_run_id, old.job, old.version])

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
        """Claim up to ``limit`` due rows for ``lease_ms``: pending, due, not under
        another deliverer's live lease (a dead deliverer's rows come back after it),
        and each the first of its job and channel (``_first_due``)."""
        await self.ensure()
        m = self._m
        claim = f"{owner}/{secrets.token_hex(4)}"
        pending = await self._backend.fetch(
            f"SELECT delivery_id, event_id, job_name, channel, "
            f"{EVENT_MS[self._backend.dialect.name]}, next_at_ms, claimed_until_ms "
            f"FROM {OUTBOX_TABLE} WHERE state = 'pending'")
        for delivery_id in _first_due(pending, now_ms)[:limit]:
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
