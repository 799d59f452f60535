"""A real master for the schemathesis fuzz run: hypercorn on 127.0.0.1, real etcd, SQLite.

Schemathesis drives its cases synchronously (``requests``) from plain pytest tests, so
the master cannot live in a test's own trio run: it gets a trio run of its own in a
thread, started and stopped by ``master_in_thread``. The thread builds the same tree
as ``python -m master`` (``build_tree`` with ``serve_http=True``) minus the signal
handling, which only the main thread may own.

Before serving, the state that the document's examples name is planted (their job with
a running instance, a worker, finished runs), so that the examples reach success paths
and response schemas are checked against full answers, not only against 404s.
``RunningMaster.replant()`` puts the etcd part back (the fuzzer deletes and pauses).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import trio

from cluster.config import Config
from cluster.etcd import Etcd, open_etcd
from cluster.keyspace import Keyspace
from cluster.presence import RunningInfo, WorkerInfo
from cluster.spec import JobSpec
from cluster.store import open_store
from master import MasterContext, Services, build_tree, open_mailboxes
from master.openapi import EXAMPLE_JOB, EXAMPLE_RUN, EXAMPLE_SPEC

from master_testkit import record

__all__ = ["MasterThreadFailed", "RunningMaster", "master_in_thread"]

START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 40  # the tree's own grace (HTTP drain, then actors) fits in this
REPLANT_TIMEOUT_S = 10
_PLANTED_SPEC = {**EXAMPLE_SPEC, "name": EXAMPLE_JOB, "env": {"A": "1"},
                 "selector": {"zone": "a"}, "createdAt": 1_000}


class MasterThreadFailed(Exception):
    """The master's thread died before it served, or did not stop in time."""

    def __init__(self, what: str) -> None:
        super().__init__(f"the fuzzed master {what}")


@dataclass(frozen=True)
class _Handle:
    token: trio.lowlevel.TrioToken
    stop: trio.Event
    replant: Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class RunningMaster:
    url: str  # http://127.0.0.1:<port>, no trailing slash
    config: Config
    _handle: _Handle

    def replant(self) -> None:
        """Put the planted job, its running run and the worker back in etcd (called
        from the test's thread; runs in the master's trio run)."""
        trio.from_thread.run(self._handle.replant, trio_token=self._handle.token)


async def _plant_etcd(etcd: Etcd, keys: Keyspace) -> None:
    with trio.fail_after(REPLANT_TIMEOUT_S):
        await etcd.put(keys.job(EXAMPLE_JOB), JobSpec.from_json(_PLANTED_SPEC).to_bytes())
        running = RunningInfo(EXAMPLE_RUN, EXAMPLE_JOB, "w1", 1_000, 1, "schedule", 2_000)
        await etcd.put(keys.running(EXAMPLE_JOB, EXAMPLE_RUN), running.to_bytes())
        worker = WorkerInfo("w1", "host-1", 42, labels={"zone": "a"}, version="1",
                            started_ms=1_000, running=1, capacity=4, wall_ms=2_000)
        await etcd.put(keys.worker("w1"), worker.to_bytes())


async def _plant_runs(config: Config) -> None:
    async with open_store(config.db_url) as store:
        await store.write_batch([
            record(EXAMPLE_RUN, EXAMPLE_JOB, start=5_000, exit_code=None),
            record("run-2", EXAMPLE_JOB, start=9_000, output_truncated=True,
                   status="failed", exit_code=2, err="boom\n"),
            record("run-skipped", EXAMPLE_JOB, start=None, status="skipped"),
        ])


async def _serve(config: Config, ready: queue.Queue[Any]) -> None:
    addresses, inboxes = open_mailboxes(config)
    ctx = MasterContext.create(config)
    async with open_etcd(config.etcd_endpoints, timeout_s=config.etcd_request_timeout_s) as etcd:
        await _plant_etcd(etcd, ctx.keyspace)
        await _plant_runs(config)
        services = Services.create(ctx, etcd, addresses.workers)
        root = build_tree(ctx, inboxes, etcd, services, serve_http=True)
        stop = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                with trio.fail_after(START_TIMEOUT_S):
                    started: Mapping[str, Any] = await nursery.start(root.run)
                handle = _Handle(trio.lowlevel.current_trio_token(), stop,
                                 lambda: _plant_etcd(etcd, ctx.keyspace))
                ready.put((started["http"][0], handle))
                await stop.wait()
                root.request_stop()  # graceful: the tree drains HTTP, then stops actors
        finally:
            with trio.move_on_after(REPLANT_TIMEOUT_S, shield=True):
                await etcd.delete_prefix(config.prefix)


def _run_thread(config: Config, ready: queue.Queue[Any]) -> None:
    try:
        trio.run(_serve, config, ready)
    except BaseException as exc:  # handed to the test's thread, which raises it
        ready.put(exc)


@contextmanager
def master_in_thread(config: Config) -> Iterator[RunningMaster]:
    """Serve ``config`` in a thread of its own until the block ends."""
    ready: queue.Queue[Any] = queue.Queue()
    thread = threading.Thread(target=_run_thread, args=(config, ready), name="fuzzed-master",
                              daemon=True)
    thread.start()
    try:
        first = ready.get(timeout=START_TIMEOUT_S + 10)
    except queue.Empty:
        raise MasterThreadFailed("did not start in time") from None
    if isinstance(first, BaseException):
        raise MasterThreadFailed("failed to start") from first
    url, handle = first
    try:
        yield RunningMaster(url.rstrip("/"), config, handle)
    finally:
        try:
            trio.from_thread.run_sync(handle.stop.set, trio_token=handle.token)
        except trio.RunFinishedError:
            pass  # it ended on its own: the queue says why
        thread.join(STOP_TIMEOUT_S)
        if thread.is_alive():
            raise MasterThreadFailed("did not stop in time")
        if not ready.empty() and isinstance(failure := ready.get(), BaseException):
            raise MasterThreadFailed("failed while serving") from failure
