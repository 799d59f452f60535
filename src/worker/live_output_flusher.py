"""The flusher of live output: every ``FLUSH_S``, what running commands printed goes
to the run store's ``run_output`` in one statement (``worker.live_output``).

A supervisor child of the worker with a store connection of its own, like the alert
deliverer: a slow or absent store delays only the live view, never scheduling nor
the LogSink's records. A write that fails keeps its chunks for the next round
(they count in the pending bound, so a long outage stops the taps, which say so);
the store reconnects by itself. Once a minute it also deletes chunks older than
``OUTPUT_KEEP_MS`` (any worker's: a bounded batch, so every worker doing it is
cheap). Stopped, it flushes once more, within ``STOP_FLUSH_S``: the runs ended
during the stop get their last chunks and ``eof``.

Metrics: a prometheus collector over ``LiveOutput.statistics`` (``LiveOutputMetrics``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, Final

import trio
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from cluster.store import (OUTPUT_KEEP_MS, OutputChunk, RunStore, StoreError, StoreSettings,
                           open_store)

from .clock import WallClock
from .live_output import FLUSH_S, LiveOutput, LiveOutputStatistics

__all__ = ["LiveOutputFlusher", "LiveOutputMetrics"]

log = logging.getLogger(__name__)

PRUNE_EVERY_S: Final = 60.0
STOP_FLUSH_S: Final = 2.0
REOPEN_S: Final = 1.0


class LiveOutputFlusher:
    """A child (``run``/``request_stop``); one per worker tree, over its ``LiveOutput``."""

    def __init__(self, live: LiveOutput, db: Any, clock: WallClock, *,
                 settings: StoreSettings | None = None, flush_s: float = FLUSH_S) -> None:
        self._live = live
        self._db = db
        self._clock = clock
        self._settings = settings or StoreSettings()
        self._flush_s = flush_s
        self._stop = trio.Event()
        self._unwritten: list[OutputChunk] = []  # a failed write's, tried again first
        self._next_prune = 0.0

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while not self._stop.is_set():
            try:
                async with open_store(self._db, self._settings) as store:
                    await self._serve(store)
                    return
            except (StoreError, OSError) as exc:
                log.debug("live output: store not open (%s)", exc)
                with trio.move_on_after(REOPEN_S):
                    await self._stop.wait()

    async def _serve(self, store: RunStore) -> None:
        while not self._stop.is_set():
            with trio.move_on_after(self._flush_s):
                await self._stop.wait()
            await self._flush(store)
            if trio.current_time() >= self._next_prune:
                self._next_prune = trio.current_time() + PRUNE_EVERY_S
                try:
                    await store.output.prune(self._clock.now_ms() - OUTPUT_KEEP_MS)
                except StoreError as exc:
                    log.debug("live output: prune failed: %s", exc)
        with trio.move_on_after(STOP_FLUSH_S):
            await self._flush(store)

    async def _flush(self, store: RunStore) -> None:
        """Writes what waits; what the store refuses waits (and counts) for the next."""
        live = self._live
        if fresh := live.take():
            self._unwritten += fresh
            live.pending_bytes += _size(fresh)  # pending until written
        if not self._unwritten:
            return
        try:
            await store.output.append(self._unwritten)
        except StoreError as exc:
            live.write_failures += 1
            log.debug("live output: %d chunks not written: %s", len(self._unwritten), exc)
            return
        live.pending_bytes -= _size(self._unwritten)
        live.chunks_written += len(self._unwritten)
        self._unwritten = []


def _size(chunks: list[OutputChunk]) -> int:
    return sum(len(c.data) for c in chunks)


class LiveOutputMetrics:
    """A prometheus_client collector over ``read()`` (register it in a registry)."""

    def __init__(self, prefix: str, read: Callable[[], LiveOutputStatistics]) -> None:
        self._prefix = prefix
        self._read = read

    def collect(self) -> Iterator[Metric]:
        stats = self._read()
        p = self._prefix
        yield CounterMetricFamily(f"{p}_live_output_chunks_written",
                                  "Chunks of running runs' output written to the run store",
                                  value=stats.chunks_written)
        yield CounterMetricFamily(f"{p}_live_output_read_bytes",
                                  "Bytes running commands printed", value=stats.bytes_read)
        yield CounterMetricFamily(f"{p}_live_output_dropped_bytes",
                                  "Bytes not streamed: over a run's limit or while the store "
                                  "was behind", value=stats.bytes_dropped)
        yield CounterMetricFamily(f"{p}_live_output_write_failures",
                                  "Live output writes the run store refused",
                                  value=stats.write_failures)
        yield GaugeMetricFamily(f"{p}_live_output_pending_bytes",
                                "Live output waiting to be written", value=stats.pending_bytes)
