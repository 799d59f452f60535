"""The StatsBuilder: builds the run store's older records into the statistics' rollup
in the background, so that no dashboard waits for it.

Why: on MySQL the dashboard reads a rollup (``cluster.store._rollup``) that a new or
upgraded store must first build from the records already there: ~18 s of the
server's time for 1,000,000 records. Built by the summaries themselves, each
dashboard request paid a step of it, and the first one any schema change
(BENCHMARKS.md "The jobs page with 10,000 jobs": 10 s). Here it is done by this
supervisor child from the master's start, in steps of about ``STEP_S`` with a pause
of ``GAP_S`` between them (the workers' batches and the dashboards' queries get the
server in between); a summary only follows what changed and waits for at most the
step under way, and until the build is done it says ``partial`` with the time before
which buckets may be missing runs, which the dashboard shows. It reports started
after its first step (at most FIRST_STEP_WAIT_S), so the master serves no dashboard
before a small store is built (one step), nor waits long for a large one.

Once built, it refreshes the rollup every ``FOLLOW_S`` (the minutes whose records
changed), so a summary rarely has much to follow. With the store down it waits
(backoff) and goes on from where the rollup's state says (the state is in the
store: a restarted master, or another one, goes on from there). SQLite has no rollup:
``build`` answers done at once.
"""

from __future__ import annotations

import logging
import time
from typing import Final

import trio

from cluster.backoff import Backoff
from cluster.store import StoreError

from .errors import ApiError
from .runs import LogManager

__all__ = ["StatsBuilder"]

log = logging.getLogger(__name__)

STEP_S: Final = 0.05  # one step of the build (a summary waits for at most one)
FIRST_STEP_WAIT_S: Final = 2.0  # the master's start waits this long for the first
GAP_S: Final = 0.05  # between steps: the server is shared (half its time at most)
FOLLOW_S: Final = 10.0  # once built: how often the changes are followed
RETRY_S, RETRY_MAX_S = 0.5, 30.0


class StatsBuilder:
    """The supervisor child; build a fresh one per (re)start."""

    def __init__(self, runs: LogManager) -> None:
        self._runs = runs
        self._stop = trio.Event()
        self._stepped = trio.Event()  # the first step is done (or failed)

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._build)
            with trio.move_on_after(FIRST_STEP_WAIT_S):
                await self._stepped.wait()
            task_status.started()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    async def _build(self) -> None:
        backoff = Backoff(RETRY_S, RETRY_MAX_S)
        started: float | None = None
        while True:
            try:
                done = await self._runs.build_stats(STEP_S)
            except (StoreError, ApiError) as exc:
                self._stepped.set()
                delay_s = backoff.failed()
                log.debug("statistics: not built now (%s); again in %.1f s", exc, delay_s)
                await trio.sleep(delay_s)
                continue
            backoff.succeeded()
            if not done and started is None:
                started = time.monotonic()
                log.info("statistics: adding the older runs to the dashboard's rollup")
            elif done and started is not None:
                log.info("statistics: the older runs are in the rollup (%.1f s)",
                         time.monotonic() - started)
                started = None
            self._stepped.set()
            await trio.sleep(FOLLOW_S if done else GAP_S)
