"""Retention: deletes old run records, a little at a time, every few minutes.

Policy (config): records older than ``log_retention_days``, and per job all but the
newest ``log_retention_max_per_job``; either may be unset (no limit). Both unset: the
actor only waits to be stopped.

Why small batches: one big DELETE on a busy MySQL table holds locks and bloats the
undo log while workers are writing runs; ``RunStore.prune`` deletes BATCH_SIZE rows
per statement, so workers' writes interleave. It goes through the LogManager, which
owns the store: with the store down a pass fails with a warning and the next pass
tries again. The first pass waits FIRST_DELAY_S, so a restart storm does not prune
on every start.

Its inbox carries no messages (``RetentionMsg`` is empty): sealing it is the stop.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from actors import Actor, Inbox
from cluster.store import StoreError

from .ask import ask
from .context import MasterContext
from .errors import ApiError, StoreDown
from .messages import RetentionMsg
from .runs import LogManager

__all__ = ["Retention"]

log = logging.getLogger(__name__)

INTERVAL_S = 300.0
FIRST_DELAY_S = 60.0
BATCH_SIZE = 500
PASS_TIMEOUT_S = 600.0  # a whole pass, however many batches it takes
DAY_MS = 86_400_000


class Retention(Actor[RetentionMsg]):
    def __init__(self, inbox: Inbox[RetentionMsg], ctx: MasterContext, runs: LogManager, *,
                 interval_s: float = INTERVAL_S, first_delay_s: float = FIRST_DELAY_S) -> None:
        super().__init__(inbox)
        self._ctx = ctx
        self._runs = runs
        self._interval_s = interval_s
        self._first_delay_s = first_delay_s
        self.passes = 0

    @property
    def enabled(self) -> bool:
        config = self._ctx.config
        return config.log_retention_days is not None \
            or config.log_retention_max_per_job is not None

    def background(self) -> tuple[Callable[[], Awaitable[None]], ...]:
        return (self._every_interval,) if self.enabled else ()

    async def handle(self, msg: RetentionMsg) -> None:
        log.warning("retention: unexpected message %r ignored", msg)

    async def prune_once(self) -> int | None:
        """One pass; returns how many records went, None if the store was unavailable."""
        config = self._ctx.config
        days = config.log_retention_days
        older_than_ms = None if days is None else self._ctx.clock() - days * DAY_MS
        max_per_job = config.log_retention_max_per_job
        try:
            deleted = await ask(self._runs.prune, older_than_ms, max_per_job, BATCH_SIZE,
                                timeout_s=PASS_TIMEOUT_S, down=StoreDown)
        except (ApiError, StoreError) as exc:
            log.warning("retention pass skipped: %s", exc)
            return None
        finally:
            self.passes += 1
        self._ctx.metrics.retention_deleted.inc(deleted)
        if deleted:
            log.info("retention deleted %d run records", deleted)
        return deleted

    async def _every_interval(self) -> None:
        await trio.sleep(self._first_delay_s)
        while True:
            await self.prune_once()
            await trio.sleep(self._interval_s)
