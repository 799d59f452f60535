"""The LogSink against MariaDB: the basic path on the shared server, and a real outage on
a private one (``mariadb_factory``: stop() and start() keep its port and data)."""

from __future__ import annotations

import trio

from cluster.store import open_store
from log_sink_testkit import MIB, record, records, running_sink, sink_config, stored_ids, wait_until


async def test_mysql_batches_and_oversize_output(mysql_url, tmp_path):
    batch = [record(0, output="y" * MIB), *records(250)[1:]]
    cfg = sink_config(tmp_path, db_url=mysql_url, job_log_batch_size=100)
    async with running_sink(cfg) as h:
        await h.write_all(batch)
        await h.flush()
        stats = h.stats()
    assert sorted(await stored_ids(mysql_url)) == [r.run_id for r in batch]
    async with open_store(mysql_url) as store:
        assert len((await store.get("run-000000")).output) == MIB
    assert stats.written_total == 250 and stats.batches == 3 and stats.spilled_total == 0


async def test_mariadb_outage_spills_then_every_record_lands_once(mariadb_factory, tmp_path):
    server = mariadb_factory()
    cfg = sink_config(tmp_path, db_url=server.url(), sink_memory_records=200,
                      job_log_batch_size=100, db_timeout_s=2.0)
    expected = records(1300)
    async with running_sink(cfg) as h:
        await h.write_all(expected[:100])
        await h.flush()  # the table exists, the store is up
        await trio.to_thread.run_sync(server.stop)
        for i in range(100, 1300, 100):  # 1,200 records over ~3 s while it is down
            await h.write_all(expected[i:i + 100])
            await trio.sleep(0.25)
        await wait_until(lambda: h.stats().spilled >= 900)
        assert len(h.spill_lines()) == h.stats().spilled
        assert not h.stats().store_up and h.stats().queued <= 200 + 100 + 100

        await trio.to_thread.run_sync(server.start)
        await wait_until(lambda: h.stats().spilled == 0 and h.stats().queued == 0, timeout_s=60)
        await h.flush()
        assert h.spill_path.stat().st_size == 0  # replayed, then truncated
        stats = h.stats()
    ids = await stored_ids(server.url())
    assert len(ids) == 1300 and sorted(ids) == [r.run_id for r in expected]
    assert stats.replayed_total == stats.spilled_total >= 900 and stats.store_up


async def test_stop_during_outage_then_next_sink_replays(mariadb_factory, tmp_path):
    server = mariadb_factory()
    await trio.to_thread.run_sync(server.stop)
    cfg = sink_config(tmp_path, db_url=server.url(), sink_memory_records=10_000)
    expected = records(600)
    async with running_sink(cfg, worker_id="w7") as h:  # starts with the database down
        await h.write_all(expected)
    assert [line["runId"] for line in h.spill_lines()] == [r.run_id for r in expected]

    await trio.to_thread.run_sync(server.start)
    async with running_sink(cfg, worker_id="w7") as h2:
        await wait_until(lambda: h2.stats().replayed_total == 600, timeout_s=60)
    assert sorted(await stored_ids(server.url())) == [r.run_id for r in expected]
    assert not h2.spill_path.exists()
