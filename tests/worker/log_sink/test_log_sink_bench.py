"""Throughput of the LogSink into MariaDB (records/s), marked slow; the target is 20,000.

    .venv/bin/python -m pytest tests/worker/log_sink/test_log_sink_bench.py -m slow -s -q

Measured from the first Write to the answer of a Flush sent after the last one, with
records of ~200 bytes of output sent as fast as the mailbox takes them.
"""

from __future__ import annotations

import time

import pytest

from log_sink_testkit import record, running_sink, sink_config

OUTPUT = ("line of job output " * 11)[:200]
TOTAL = 50_000
FLOOR_PER_S = 5_000  # a regression floor for a loaded 2-core machine; the target is 20,000


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [1000, 100])
async def test_log_sink_throughput_into_mariadb(mysql_url, tmp_path, batch_size):
    recs = [record(i, output=OUTPUT) for i in range(TOTAL)]
    cfg = sink_config(tmp_path, db_url=mysql_url, job_log_batch_size=batch_size,
                      job_log_commit_timeout_s=1.0)  # memory: the default 10,000 records
    async with running_sink(cfg) as h:
        await h.write_all(recs[:10])
        await h.flush()  # table created, connection open: not part of the measure
        started = time.perf_counter()
        await h.write_all(recs[10:])
        await h.flush(timeout_s=120)
        await_s = time.perf_counter() - started
        stats = h.stats()
    rate = (TOTAL - 10) / await_s
    print(f"\nbatch {batch_size:5d}: {rate:9,.0f} records/s "
          f"({stats.batches} batches, {stats.spilled_total} spilled and replayed)")
    assert stats.written_total == TOTAL
    assert rate >= FLOOR_PER_S
