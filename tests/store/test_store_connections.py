"""RunStore calls are bounded and its connections recover: timeouts and cancellation
discard a connection, wrong passwords and refused connections are said at once, and
each backend copes with what happens under it (a shared store, a dropped table, a
relative SQLite path, another writer)."""

from __future__ import annotations

import sqlite3
import time

import pytest
import trio

from cluster.store import (
    StoreAccessDenied,
    StoreConfigError,
    StoreSettings,
    StoreUnavailable,
    open_store,
)

from store_testkit import all_ids, run


# --- bounded calls and discarded connections ------------------------------------------

FAST = StoreSettings(connect_timeout_s=1.0, query_timeout_s=0.5)
SLOW_QUERY = {
    "sqlite": ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
               "WHERE i < 1000000000) SELECT max(i) FROM n"),
    "mysql": "SELECT SLEEP(5)",
}


async def test_a_slow_call_times_out_and_the_store_recovers(store_url):
    slow = SLOW_QUERY[store_url.partition(":")[0]]
    async with open_store(store_url, FAST) as store:
        await store.write_batch([run(1)])
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="no answer within 1.5 s"):
            await store._backend.fetch(slow)
        assert time.monotonic() - started < 4.0
        assert await store.get("run-00001") == run(1)
        stats = store.statistics()
        assert stats.timeouts == 1 and stats.discarded_connections == 1


async def test_a_cancelled_call_is_cancelled_and_the_store_recovers(store_url):
    slow = SLOW_QUERY[store_url.partition(":")[0]]
    async with open_store(store_url, FAST) as store:
        await store.ping()
        with trio.move_on_after(0.2) as scope:
            await store._backend.fetch(slow)
        assert scope.cancelled_caught  # Cancelled, not turned into an error
        await store.write_batch([run(1)])
        assert await store.get("run-00001") == run(1)
        assert store.statistics().discarded_connections == 1


# --- MySQL only -------------------------------------------------------------------------

async def test_wrong_password_is_a_config_error(mysql_url):
    bad = mysql_url.replace(":scheduler-test@", ":wrong-password@")
    async with open_store(bad) as store:
        with pytest.raises(StoreAccessDenied, match="access denied") as info:
            await store.ping()
    assert isinstance(info.value, StoreConfigError)
    assert "wrong-password" not in str(info.value)


async def test_refused_connection_is_unavailable_at_once():
    async with open_store("mysql://u:p@127.0.0.1:1/db") as store:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.ping()
        assert time.monotonic() - started < 2.0


async def test_store_uses_a_trio_asyncio_loop_that_is_already_running(mysql_url):
    import trio_asyncio

    async with trio_asyncio.open_loop() as loop:
        async with open_store(mysql_url) as store:
            assert store._backend._loop is loop
            await store.write_batch([run(1)])
            assert await store.get("run-00001") == run(1)


async def test_concurrent_callers_share_one_store(store):
    async def writer(k: int) -> None:
        await store.write_batch([run(k * 10 + j) for j in range(10)])
        assert len((await store.query(limit=5)).records) == 5

    async with trio.open_nursery() as nursery:
        for k in range(12):  # more callers than MySQL pool connections
            nursery.start_soon(writer, k)
    assert await store.count() == 120


async def test_sqlite_relative_path_is_fixed_at_open(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    async with open_store("sqlite:///nested/dir/runs.db") as store:
        monkeypatch.chdir("/")
        await store.write_batch([run(1)])
    assert (tmp_path / "nested" / "dir" / "runs.db").exists()


async def test_sqlite_store_works_under_an_autojump_clock(tmp_path, autojump_clock):
    # Actor tests run on a MockClock that jumps whenever every task waits, as ours
    # does on its thread: the SQLite deadline must not follow that clock. (A generous
    # wall deadline: the mock clock would jump past it at once if it followed it.)
    generous = StoreSettings(connect_timeout_s=30.0, query_timeout_s=30.0)
    async with open_store(f"sqlite:///{tmp_path}/runs.db", generous) as store:
        await store.write_batch([run(i) for i in range(200)])
        assert await store.count() == 200
        assert store.statistics().timeouts == 0


async def test_a_table_dropped_under_the_store_is_recreated(store_url):
    async with open_store(store_url) as store:
        await store.write_batch([run(1)])
        if store_url.startswith("sqlite"):
            with sqlite3.connect(store_url.removeprefix("sqlite:///")) as conn:
                conn.execute("DROP TABLE job_log")
        else:
            from services import mysql_cli
            mysql_cli(store_url, f"DROP TABLE {store_url.rpartition('/')[2]}.job_log")
        with pytest.raises(StoreUnavailable):  # the LogSink retries this...
            await store.write_batch([run(2)])
        await store.write_batch([run(2)])  # ...and the retry finds a new table
        assert await all_ids(store) == ["run-00002"]


async def test_sqlite_opens_a_database_another_connection_is_writing(tmp_path):
    """Switching a new file to WAL fails at once while another connection holds it:
    the store waits for it (within the connect timeout) instead of giving up."""
    path = tmp_path / "shared.db"
    other = sqlite3.connect(path, check_same_thread=False)
    other.execute("CREATE TABLE t (x)")
    other.execute("BEGIN IMMEDIATE")  # rollback journal, write lock held

    def release_soon() -> None:
        time.sleep(0.3)
        other.rollback()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, release_soon)
        async with open_store(f"sqlite:///{path}") as store:
            await store.write_batch([run(1)])
            assert await all_ids(store) == [run(1).run_id]
    other.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
