"""The same RunStore behaviour against both backends: SQLite in tmp_path and MariaDB
(a fresh database per test, from the ``mysql_url`` fixture): writes, queries, pages,
pruning, opening. Bounded calls and connections are in test_store_connections, the
audit log in test_store_audit."""

from __future__ import annotations

import sqlite3

import pytest

from cluster.store import (
    InvalidCursor,
    InvalidQuery,
    RunStatus,
    StoreClosedError,
    StoreSchemaError,
    open_store,
)
from cluster.store import _rows, _schema

from store_testkit import MIB, T0, all_ids, run


async def test_round_trip_keeps_every_field(store):
    records = [
        run(1),
        run(2, output="emoji 😀 and NUL \x00 and ünïcode", err="e\x00rr", exit_code=None,
            status="lost", trigger="catchup", attempt=3, end_time=None, output_truncated=True),
        run(3, start_time=None, end_time=None, exit_code=None, status="skipped",
            trigger="manual", output=""),
        run(4, trigger="catchup", missed_fires=17, first_missed=1_700_000_000_000),
    ]
    await store.write_batch(records)
    for r in records:
        assert await store.get(r.run_id) == r
    assert await store.get("no-such-run") is None


async def test_a_replaced_run_round_trips_and_is_its_own_status_filter(store):
    note = "[scheduler] run replaced: replaced by run run-00002 (concurrency replace)\n"
    replaced = run(1, status=RunStatus.REPLACED, exit_code=-15, err=note)
    await store.write_batch([replaced, run(2), run(3, status="killed", exit_code=-15)])
    assert await store.get(replaced.run_id) == replaced
    assert (await store.query(status="replaced")).records == [replaced]
    assert await store.count(status="killed") == 1
    assert await store.count(status=["replaced", "succeeded"]) == 2


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


@pytest.mark.parametrize("fenced_first", [True, False])
async def test_the_workers_own_fenced_record_wins_over_a_survivors_lost(store, fenced_first):
    """A partitioned worker kills its run and records it fenced (with its start and
    output); the survivors record it lost when its lease expires (no start: they cannot
    know). The two land in either order, one row: the fenced one."""
    fenced = run(9, status=RunStatus.LOST, output="half done\n", exit_code=-9,
                 err="the session lease 7 was lost: the run was fenced")
    survivors = run(9, status=RunStatus.LOST, output="", exit_code=None, start_time=None,
                    err="lost: worker w1 died or lost its session after starting the run")
    for record in ([fenced, survivors] if fenced_first else [survivors, fenced]):
        await store.write_batch([record])
    assert await store.get(fenced.run_id) == fenced
    assert await store.count() == 1


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
    monkeypatch.setattr(_rows, "MAX_TEXT_BYTES", 10)
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


async def test_a_job_log_of_an_earlier_release_gets_the_catch_up_columns(store_url):
    """A table created before ``missed_fires``/``first_missed`` existed: its rows stay,
    the columns are added (NULL for them), and catch-up records keep their counts."""
    added = [name for name, _ in _schema.ADDED_COLUMNS]
    old = [c for c in (_schema.SQLITE if store_url.startswith("sqlite") else _schema.MYSQL)
           .create_statements[0].splitlines() if not any(a in c for a in added)]
    async with open_store(store_url) as store:
        await store._backend.execute("\n".join(old))
        columns = [c for c in _schema.COLUMNS if c not in added]
        await store._backend.execute(
            f"INSERT INTO job_log ({', '.join(columns)}) VALUES "
            f"('old-run', 'j', 'w', 'true', '', '', 0, 'succeeded', 'schedule', 1, 1, 1, 1, 2, "
            f"0, 1)")
    async with open_store(store_url) as store:
        await store.write_batch([run(1, trigger="catchup", missed_fires=5, first_missed=7)])
        assert await store.get("run-00001") == run(1, trigger="catchup", missed_fires=5,
                                                    first_missed=7)
        kept = await store.get("old-run")
        assert (kept.missed_fires, kept.first_missed, kept.plan_time) == (None, None, 1)
