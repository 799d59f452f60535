"""MariaDB: a ``job_log`` made before ``changed_at`` existed gets it at the statistics'
first refresh, without a table rewrite (a constant default, then the server's clock),
and no run is lost or counted twice: the rows already there are backfilled, the ones
written or replaced after are followed. A migration left half-done is completed."""

from __future__ import annotations

from cluster.store import open_store

from test_store_stats import NOW, at

OLDER_TABLE = "ALTER TABLE job_log DROP INDEX ix_job_log_changed, DROP COLUMN changed_at"
COLUMN = ("SELECT COLUMN_DEFAULT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
          "DATABASE() AND TABLE_NAME = 'job_log' AND COLUMN_NAME = 'changed_at'")
INDEX = ("SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = "
         "DATABASE() AND TABLE_NAME = 'job_log' AND INDEX_NAME = 'ix_job_log_changed'")

OLD_ROWS = "SELECT COUNT(*) FROM job_log WHERE changed_at < '2000-01-01'"


async def totals(store) -> dict[str, int]:
    summary = await store.stats.summary("1h", NOW)
    assert not summary.partial
    return {status: sum(counts) for status, counts in summary.runs.items()}


async def test_an_older_table_gets_changed_at_and_every_run_counts_once(mysql_url):
    async with open_store(mysql_url) as store:
        await store.write_batch([at(i, i, 0) for i in range(10)])
        await store._backend.execute(OLDER_TABLE)  # as an older release made it
        assert await store._backend.fetch(COLUMN) == []
        await store.write_batch([at(i, 20 + i, 0, status="failed") for i in range(10, 15)])
    async with open_store(mysql_url) as store:
        assert await store.stats.build(30)
        [(default,)] = await store._backend.fetch(COLUMN)
        assert str(default).lower().startswith("current_timestamp")
        assert await store._backend.fetch(INDEX) == [(1,)]
        # Not rewritten: the rows already there read the constant default.
        assert await store._backend.fetch(OLD_ROWS) == [(15,)]
        assert await totals(store) == {"succeeded": 10, "failed": 5}
        # Written and replaced after the upgrade: followed by changed_at, counted once.
        await store.write_batch([at(0, 0, 0, status="killed"), at(99, 1, 0)])
        assert await totals(store) == {"succeeded": 10, "failed": 5, "killed": 1}


async def test_a_migration_left_half_done_is_completed(mysql_url):
    async with open_store(mysql_url) as store:
        await store.write_batch([at(1, 1, 0)])
        await store._backend.execute(OLDER_TABLE)
        # The first step alone: the column with its constant default, no index.
        await store._backend.execute(
            "ALTER TABLE job_log ADD COLUMN changed_at TIMESTAMP(3) NOT NULL DEFAULT "
            "'1970-01-01 00:00:01' ON UPDATE CURRENT_TIMESTAMP(3)")
    async with open_store(mysql_url) as store:
        assert await store.stats.build(30)
        [(default,)] = await store._backend.fetch(COLUMN)
        assert str(default).lower().startswith("current_timestamp")
        assert await store._backend.fetch(INDEX) == [(1,)]
        await store.write_batch([at(2, 0, 0, status="failed")])  # followed: stamped now
        assert await totals(store) == {"succeeded": 1, "failed": 1}
