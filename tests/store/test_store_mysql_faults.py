"""MariaDB going away and coming back, on a private server (``mariadb_factory``).

A dead server must make calls fail fast with StoreUnavailable, a frozen one within
the call timeout, and the same store object must work again once the server is back:
the LogSink relies on all three to retry instead of hanging or losing runs.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
import trio

from cluster.store import RunRecord, StoreSettings, StoreUnavailable, open_store

T0 = 1_700_000_000_000
SETTINGS = StoreSettings(connect_timeout_s=1.0, query_timeout_s=2.0)
BOUND_S = SETTINGS.call_timeout_s + 2.0  # generous: a loaded 2-core machine


def run(i: int) -> RunRecord:
    return RunRecord(
        run_id=f"run-{i}", job_name="job", worker="w1", command="true", output="", err="",
        exit_code=0, status="succeeded", trigger="schedule", attempt=1, plan_time=T0 + i,
        schedule_time=T0 + i, start_time=T0 + i, end_time=T0 + i + 1,
    )


async def assert_unavailable_fast(store, call) -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await call(store)
    assert time.monotonic() - started < BOUND_S


async def test_store_survives_server_stop_and_start(mariadb_factory):
    server = mariadb_factory()
    await trio.to_thread.run_sync(server.stop)
    async with open_store(server.url(), SETTINGS) as store:  # opens while the server is down
        await assert_unavailable_fast(store, lambda s: s.write_batch([run(0)]))
        await trio.to_thread.run_sync(server.start)
        await store.write_batch([run(1)])  # creates the table now
        assert await store.count() == 1

        await trio.to_thread.run_sync(server.stop)
        await assert_unavailable_fast(store, lambda s: s.write_batch([run(2)]))
        await assert_unavailable_fast(store, lambda s: s.query(job_name="job"))
        await trio.to_thread.run_sync(server.start)  # same data dir and port

        await store.write_batch([run(2)])
        assert [r.run_id for r in (await store.query()).records] == ["run-2", "run-1"]
        assert store.statistics().failures >= 3


async def test_frozen_server_times_out_and_store_recovers(mariadb_factory):
    server = mariadb_factory()
    async with open_store(server.url(), SETTINGS) as store:
        await store.write_batch([run(1)])
        os.kill(server.process.pid, signal.SIGSTOP)  # accepts TCP, never answers
        try:
            await assert_unavailable_fast(store, lambda s: s.get("run-1"))
            await assert_unavailable_fast(store, lambda s: s.write_batch([run(2)]))
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        await store.write_batch([run(2)])
        assert await store.count() == 2
        stats = store.statistics()
        # The first call discards its connection; the second is cut off while dialling.
        assert stats.timeouts == 2 and stats.discarded_connections >= 1
