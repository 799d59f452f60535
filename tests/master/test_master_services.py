"""The LogManager service: a bound on queries at once, and the StoreKeeper's graceful stop.

The store is SQLite; its ping is held on an event, so that queries stay in flight as
long as the test wants.
"""

from __future__ import annotations

import pytest
import trio
from trio.testing import wait_all_tasks_blocked

from cluster.store import RunStore, StoreClosedError
from master import MasterContext
from master.errors import ShuttingDown, StoreDown
from master.runs import CONCURRENCY, LogManager, StoreKeeper

from master_testkit import make_config


def log_manager(tmp_path) -> LogManager:
    config = make_config(tmp_path, "127.0.0.1:1", "/x/")  # etcd is never used here
    return LogManager(MasterContext.create(config))


def hold_pings(monkeypatch) -> trio.Event:
    """From now on a store ping waits for the returned event."""
    release = trio.Event()

    async def held_ping(store: RunStore) -> None:
        await release.wait()

    monkeypatch.setattr(RunStore, "ping", held_ping)
    return release


async def test_queries_fail_with_store_down_until_the_keeper_opened_the_store(tmp_path):
    runs = log_manager(tmp_path)
    with pytest.raises(StoreDown, match="being opened"):
        await runs.ping()


async def test_at_most_concurrency_queries_run_at_once_the_rest_wait(tmp_path, monkeypatch):
    runs = log_manager(tmp_path)
    keeper = StoreKeeper(runs)
    answered = 0

    async def ping() -> None:
        nonlocal answered
        await runs.ping()
        answered += 1

    async with trio.open_nursery() as nursery:
        await nursery.start(keeper.run)
        release = hold_pings(monkeypatch)
        async with trio.open_nursery() as callers:
            for _ in range(CONCURRENCY + 5):
                callers.start_soon(ping)
            await wait_all_tasks_blocked()
            assert (runs.in_flight, answered) == (CONCURRENCY, 0)
            release.set()
        assert (runs.in_flight, answered) == (0, CONCURRENCY + 5)
        keeper.request_stop()


async def test_stop_lets_queries_in_flight_finish_then_closes_the_store(tmp_path,
                                                                         monkeypatch):
    runs = log_manager(tmp_path)
    keeper = StoreKeeper(runs)
    stopped = trio.Event()
    answers: list[object] = []

    async def keep(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await keeper.run(task_status=task_status)
        stopped.set()

    async def ping() -> None:
        answers.append(await runs.ping())

    async with trio.open_nursery() as nursery:
        await nursery.start(keep)  # the first check is not held
        store = runs._store
        assert store is not None
        release = hold_pings(monkeypatch)
        nursery.start_soon(ping)
        await wait_all_tasks_blocked()
        keeper.request_stop()
        with trio.move_on_after(0.5):  # closing a store takes a thread: wait in real time
            await stopped.wait()
        assert not stopped.is_set()  # it waits for the query in flight,
        assert await store.get("any-run") is None  # and keeps the store open meanwhile
        with pytest.raises(ShuttingDown):
            await runs.ping()  # while a new one is refused
        release.set()
        await stopped.wait()
    assert answers == [None]
    with pytest.raises(StoreClosedError):
        await store.get("any-run")
