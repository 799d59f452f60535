"""The same RunStore behaviour against both backends: SQLite in tmp_path and MariaDB
(a fresh database per test, from the ``mysql_url`` fixture)."""

from __future__ import annotations

import sqlite3
import time

import pytest
import trio

from cluster.store import (InvalidCursor, InvalidQuery, RunRecord, RunStatus,
                           StoreAccessDenied, StoreClosedError, StoreConfigError,
                           StoreSchemaError, StoreSettings, StoreUnavailable, open_store)
from cluster.store import _store

T0 = 1_700_000_000_000
MIB = 1024 * 1024


def run(i: int, **overrides: object) -> RunRecord:
    """Run ``i`` of job-<i % 3>, started at T0 + i s."""
    fields: dict[str, object] = dict(
        run_id=f"run-{i:05d}", job_name=f"job-{i % 3}", worker="w1", command=f"echo {i}",
        output=f"out {i}\n", err="", exit_code=0, status="succeeded", trigger="schedule",
        attempt=1, plan_time=T0 + i * 1000, schedule_time=T0 + i * 1000 + 3,
        start_time=T0 + i * 1000 + 5, end_time=T0 + i * 1000 + 900,
    )
    fields.update(overrides)
    return RunRecord(**fields)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "mysql"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/runs.db"  # tmp_path is absolute: sqlite:////...
    return request.getfixturevalue("mysql_url")


@pytest.fixture
async def store(store_url):
    async with open_store(store_url) as opened:
        yield opened


async def all_ids(store) -> list[str]:
    page = await store.query(limit=1000)
    return [r.run_id for r in page.records]


async def test_round_trip_keeps_every_field(store):
    records = [
        run(1),
        run(2, output="emoji 😀 and NUL \x00 and ünïcode", err="e\x00rr", exit_code=None,
            status="lost", trigger="catchup", attempt=3, end_time=None, output_truncated=True),
        run(3, start_time=None, end_time=None, exit_code=None, status="skipped",
            trigger="manual", output=""),
    ]
    await store.write_batch(records)
    for r in records:
        assert await store.get(r.run_id) == r
    assert await store.get("no-such-run") is None


async def test_a_batch_of_only_skipped_runs(store):
    # Columns NULL in every row: MariaDB's bulk protocol cannot type them (fallback).
    skipped = [run(i, start_time=None, end_time=None, exit_code=None, status="skipped")
               for i in range(5)]
    await store.write_batch(skipped)
    assert [await store.get(r.run_id) for r in skipped] == skipped


async def test_rewriting_a_run_id_replaces_it_in_place(store):
    await store.write_batch([run(1), run(2)])
    await store.write_batch([run(1), run(2)])  # a replayed batch: no duplicates
    assert await store.count() == 2
    newer = run(1, status="failed", exit_code=2, err="boom", end_time=T0 + 99_999)
    await store.write_batch([newer])
    assert await store.get("run-00001") == newer
    assert await store.count() == 2


async def test_a_lost_record_never_replaces_a_finished_run(store):
    done = run(7, status=RunStatus.SUCCEEDED, output="real output\n")
    await store.write_batch([done])
    await store.write_batch([run(7, status=RunStatus.LOST, output="", err="lost: worker died")])
    assert await store.get(done.run_id) == done


async def test_a_finished_run_replaces_its_lost_record(store):
    lost = run(8, status=RunStatus.LOST, output="", err="lost: worker died")
    await store.write_batch([lost])
    assert (await store.get(lost.run_id)).status is RunStatus.LOST
    await store.write_batch([lost])  # lost over lost: unchanged, no error
    done = run(8, status=RunStatus.KILLED, output="partial\n")
    await store.write_batch([done])
    assert await store.get(lost.run_id) == done


async def test_a_batch_with_the_same_run_twice_keeps_the_last(store):
    await store.write_batch([run(1, status="failed"), run(1, status="succeeded")])
    assert (await store.get("run-00001")).status is RunStatus.SUCCEEDED
    assert await store.count() == 1


async def test_one_mib_output_does_not_lose_the_batch(store):
    big = "x" * MIB + "😀"
    records = [run(i) for i in range(100)]
    records[37] = run(37, output=big, err="e" * MIB)
    await store.write_batch(records)
    assert await store.count() == 100
    stored = await store.get("run-00037")
    assert stored.output == big and len(stored.err) == MIB


async def test_a_batch_larger_than_a_mysql_packet_writes_every_row(store):
    # 24 runs of 1 MiB each: more than max_allowed_packet (16 MiB) in one batch.
    await store.write_batch([run(i, output=chr(ord("a") + i) * MIB) for i in range(24)])
    assert await store.count() == 24
    assert (await store.get("run-00023")).output == "x" * MIB


async def test_oversize_text_is_clipped_on_a_character_and_flagged(store, monkeypatch):
    monkeypatch.setattr(_store, "MAX_TEXT_BYTES", 10)
    await store.write_batch([run(1, output="0123456789ABC", err="short"),
                             run(2, output="12345678😀", command="ééééééé")])
    one, two = await store.get("run-00001"), await store.get("run-00002")
    assert one.output == "0123456789" and one.output_truncated
    assert two.output == "12345678" and two.output_truncated  # the emoji is 4 bytes
    assert two.command == "ééééé"  # 2 bytes each; command clipping sets no flag


async def test_lone_surrogates_are_replaced_not_fatal(store):
    await store.write_batch([run(1, output="bad \udcff byte"), run(2)])
    assert (await store.get("run-00001")).output == "bad ? byte"
    assert await store.count() == 2


async def test_query_filters(store):
    await store.write_batch([run(i, status="failed" if i % 4 == 0 else "succeeded")
                             for i in range(24)])
    page = await store.query(job_name="job-1")
    assert [r.run_id for r in page.records] == [f"run-{i:05d}" for i in range(22, 0, -3)]
    failed = await store.query(status="failed")
    assert {r.run_id for r in failed.records} == {f"run-{i:05d}" for i in range(0, 24, 4)}
    both = await store.query(status=["failed", "succeeded"], job_name="job-0")
    assert len(both.records) == 8
    window = await store.query(since_ms=T0 + 10_000, until_ms=T0 + 15_000)  # [10 s, 15 s)
    assert [r.run_id for r in window.records] == [f"run-{i:05d}" for i in range(14, 9, -1)]
    assert await store.count() == 24
    assert await store.count(job_name="job-1", status="failed") == 2  # runs 4 and 16
    assert await store.count(status="failed", since_ms=T0 + 10_000) == 3


async def test_pages_are_newest_first_without_gaps_or_duplicates(store):
    # Ties on start time: order falls back to insertion id, newest first.
    records = [run(i, start_time=T0 + (i // 4) * 1000) for i in range(53)]
    await store.write_batch(records[:30])
    await store.write_batch(records[30:])
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.query(limit=10, cursor=cursor)
        seen += [r.run_id for r in page.records]
        if cursor is None:
            # Runs written after the first page sort before it: later pages ignore them.
            await store.write_batch([run(i) for i in range(100, 105)])
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"run-{i:05d}" for i in range(52, -1, -1)]
    assert len(page.records) == 3


async def test_exact_last_page_has_no_next_cursor(store):
    await store.write_batch([run(i) for i in range(10)])
    page = await store.query(limit=10)
    assert len(page.records) == 10 and page.next_cursor is None


async def test_skipped_runs_sort_by_schedule_time(store):
    await store.write_batch([run(1), run(2, start_time=None, end_time=None, status="skipped"),
                             run(3)])
    assert await all_ids(store) == ["run-00003", "run-00002", "run-00001"]


async def test_query_offset_pages_one_job_newest_first(store):
    await store.write_batch([run(i) for i in range(30)])
    rows = await store.query_offset("job-2", offset=2, limit=3)
    assert [r.run_id for r in rows] == ["run-00023", "run-00020", "run-00017"]
    assert await store.query_offset("job-2", offset=10, limit=5) == []


async def test_bad_query_arguments_are_refused(store):
    with pytest.raises(InvalidCursor):
        await store.query(cursor="garbage")
    for kwargs in ({"limit": 0}, {"limit": 1001}, {"status": "done"}, {"status": []},
                   {"since_ms": "yesterday"}, {"until_ms": 1.5}):
        with pytest.raises(InvalidQuery):
            await store.query(**kwargs)
    with pytest.raises(InvalidQuery):
        await store.query_offset("job-0", offset=-1, limit=10)
    with pytest.raises(InvalidQuery):
        await store.prune(older_than_ms=T0, batch_size=0)


async def test_prune_by_age_deletes_in_batches(store):
    await store.write_batch([run(i) for i in range(50)])
    deleted = await store.prune(older_than_ms=T0 + 20_000, batch_size=7)  # runs 0..19
    assert deleted == 20
    assert await all_ids(store) == [f"run-{i:05d}" for i in range(49, 19, -1)]
    # 20 rows in batches of 7: 3 full statements, one short one that ends the loop.
    stats = store.statistics()
    assert await store.prune(older_than_ms=T0 + 20_000, batch_size=7) == 0
    assert store.statistics().calls == stats.calls + 1


async def test_prune_keeps_the_newest_per_job(store):
    await store.write_batch([run(i) for i in range(30)])  # 10 runs per job
    deleted = await store.prune(older_than_ms=None, max_per_job=4, batch_size=2)
    assert deleted == 18
    for job in range(3):
        newest = [f"run-{i:05d}" for i in range(29, -1, -1) if i % 3 == job][:4]
        assert [r.run_id for r in (await store.query(job_name=f"job-{job}")).records] == newest
    assert await store.prune(older_than_ms=T0 + 28_000, max_per_job=4) == 10  # age wins
    assert await all_ids(store) == ["run-00029", "run-00028"]


async def test_opening_twice_is_idempotent(store_url):
    async with open_store(store_url) as first:
        await first.write_batch([run(1)])
    async with open_store(store_url) as second:
        await second.ping()
        assert await second.get("run-00001") == run(1)


async def test_a_closed_store_says_so(store_url):
    async with open_store(store_url) as store:
        await store.ping()
    with pytest.raises(StoreClosedError):
        await store.get("run-00001")


async def test_a_foreign_job_log_table_is_a_schema_error(store_url, tmp_path):
    if store_url.startswith("sqlite"):
        path = store_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:  # the seed's own table shape, say
            conn.execute("CREATE TABLE job_log (job_name TEXT, command TEXT, plan_time INT)")
    else:
        async with open_store(store_url) as store:  # build it through a raw statement
            await store._backend.execute(
                "CREATE TABLE job_log (job_name VARCHAR(64), command TEXT, plan_time BIGINT)")
    async with open_store(store_url) as store:
        with pytest.raises(StoreSchemaError, match="job_log"):
            await store.write_batch([run(1)])


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


def audit_entry(i: int, job: str = "job-a", token: str = "alice") -> "AuditEntry":
    from cluster.store import AuditAction, AuditEntry

    return AuditEntry(f"{T0 + i:016d}-{i:016x}", T0 + i, token, "admin", AuditAction.PUT,
                      job, "api", {"spec": {"command": f"echo {i} ünï"}, "created": True})


async def test_audit_entries_round_trip_newest_first_and_page(store):
    entries = [audit_entry(i, job=f"job-{i % 2}", token="alice" if i < 4 else "bob")
               for i in range(6)]
    await store.write_audit(entries[:4])
    await store.write_audit(entries[2:])  # a move retried: stored once each
    newest = await store.query_audit(limit=100)
    assert newest == entries[::-1]
    first = await store.query_audit(limit=2)
    assert first == [entries[5], entries[4]]
    after = await store.query_audit(before_id=first[-1].entry_id, limit=100)
    assert after == entries[3::-1]
    assert await store.query_audit(job_name="job-1", limit=100) == [entries[5], entries[3],
                                                                     entries[1]]
    assert await store.query_audit(token="bob", job_name="job-0", limit=100) == [entries[4]]
    assert await store.query_audit(token="carol", limit=100) == []


async def test_the_run_table_alone_never_creates_the_audit_table(tmp_path):
    """Workers only write runs: their store never creates audit_log."""
    async with open_store(f"sqlite:///{tmp_path}/runs.db") as store:
        await store.write_batch([run(1)])
    with sqlite3.connect(f"{tmp_path}/runs.db") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master "
                                             "WHERE type = 'table'")}
    assert "job_log" in tables and "audit_log" not in tables
