"""AuditMover: copies the audit entries written into etcd to the run store, then
deletes them from etcd.

Entries are written into etcd with their change (one transaction, so the change never
exists without its entry, even while the store is down); etcd is no place to keep a
history, so every MOVE_INTERVAL_S this actor reads ``audit/``, writes what it found
into ``audit_log`` through the LogManager (idempotent on the entry id), and only once
that write succeeded deletes those keys (an entry's key is written once, with a
random id: what is deleted is what was copied). Invariant: an entry leaves etcd only
after it is durable in the store. With the store down the
entries wait in etcd, and the pass is retried with backoff up to MAX_BACKOFF_S; two
masters moving the same entries at once store each entry once.

Its inbox carries no messages (``AuditMoverMsg`` is empty): sealing it is the stop.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from actors import Actor, Inbox
from cluster.backoff import Backoff
from cluster.etcd import Delete, Etcd, EtcdError, KeyValue
from cluster.store import AuditEntry, InvalidAuditEntry, StoreError

from .ask import ask
from .context import MasterContext
from .errors import ApiError, StoreDown
from .messages import AuditMoverMsg
from .runs import LogManager

__all__ = ["AuditMover"]

log = logging.getLogger(__name__)

MOVE_INTERVAL_S = 1.0
MAX_BACKOFF_S = 30.0
BATCH = 100  # entries per store write and per etcd transaction (etcd allows 128 ops)
WRITE_TIMEOUT_S = 30.0


class AuditMover(Actor[AuditMoverMsg]):
    def __init__(self, inbox: Inbox[AuditMoverMsg], ctx: MasterContext, etcd: Etcd,
                 runs: LogManager, *, interval_s: float = MOVE_INTERVAL_S) -> None:
        super().__init__(inbox)
        self._ctx = ctx
        self._etcd = etcd
        self._runs = runs
        self._interval_s = interval_s
        self.moved = 0
        self._pending = 0  # what the audit_entries_pending gauge shows

    def background(self) -> tuple[Callable[[], Awaitable[None]], ...]:
        return (self._every_interval,)

    async def handle(self, msg: AuditMoverMsg) -> None:
        log.warning("audit mover: unexpected message %r ignored", msg)

    async def move_once(self) -> bool:
        """One pass: True if every entry found was moved (or none was there)."""
        try:
            snapshot = await self._etcd.get_prefix(self._ctx.keyspace.audit_prefix)
        except EtcdError as exc:
            log.warning("audit entries not moved: etcd: %s", exc)
            return False
        kvs = snapshot.kvs
        self._pending = len(kvs)
        self._ctx.metrics.audit_pending.set(self._pending)
        for start in range(0, len(kvs), BATCH):
            if not await self._move(kvs[start:start + BATCH]):
                return False
        return True

    async def _move(self, kvs: tuple[KeyValue, ...]) -> bool:
        entries = []
        for kv in kvs:
            try:
                entries.append(AuditEntry.from_bytes(kv.value))
            except InvalidAuditEntry as exc:  # not ours: never delete what we cannot keep
                log.warning("audit key %s holds no audit entry (%s): left in etcd", kv.key, exc)
        if not entries:
            return True
        try:
            await ask(self._runs.write_audit, tuple(entries), timeout_s=WRITE_TIMEOUT_S,
                      down=StoreDown)
        except (ApiError, StoreError) as exc:
            log.warning("%d audit entries wait in etcd: %s", len(entries), exc)
            return False
        keys = [self._ctx.keyspace.audit(e.entry_id) for e in entries]
        try:
            await self._etcd.txn([], [Delete(key) for key in keys])
        except EtcdError as exc:
            log.warning("audit entries stored but not yet deleted from etcd: %s", exc)
            return False  # stored once: the next pass writes them again harmlessly
        self.moved += len(keys)
        self._ctx.metrics.audit_moved.inc(len(keys))
        self._pending = max(0, self._pending - len(keys))
        self._ctx.metrics.audit_pending.set(self._pending)
        return True

    async def _every_interval(self) -> None:
        # A failed pass waits twice the interval, then twice that, up to MAX_BACKOFF_S.
        backoff = Backoff(2 * self._interval_s, MAX_BACKOFF_S)
        delay_s = self._interval_s
        while True:
            await trio.sleep(delay_s)
            if await self.move_once():
                backoff.succeeded()
                delay_s = self._interval_s
            else:
                delay_s = backoff.failed()
