"""Measure ``RunStore.write_batch`` throughput (records/s); not collected by pytest.

    .venv/bin/python tests/store/bench_store_write.py \
        --mysql "$SCHEDULER_TEST_MYSQL" --sqlite /tmp/bench.db [--records 20000]

The MySQL database named in the URL is replaced by a throw-away one (created and
dropped through the mariadb client, as the test fixtures do). The LogSink's target
is >= 20,000 records/s.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from services import mysql_cli  # noqa: E402

from cluster.store import RunRecord, open_store  # noqa: E402

OUTPUT = ("line of job output " * 11)[:200]  # ~200 bytes, like a short cron job


def records(start: int, n: int) -> list[RunRecord]:
    now = 1_700_000_000_000
    return [
        RunRecord(run_id=f"bench-{i:09d}", job_name=f"job-{i % 50}", worker="worker-1",
                  command="/usr/local/bin/report --daily", output=OUTPUT, err="",
                  exit_code=0, status="succeeded", trigger="schedule", attempt=1,
                  plan_time=now + i, schedule_time=now + i, start_time=now + i + 2,
                  end_time=now + i + 40)
        for i in range(start, start + n)
    ]


async def measure(url: str, batch: int, total: int) -> float:
    async with open_store(url) as store:
        await store.ping()
        batches = [records(i, batch) for i in range(0, total, batch)]
        started = time.perf_counter()
        for chunk in batches:
            await store.write_batch(chunk)
        elapsed = time.perf_counter() - started
        assert await store.count() >= total
    return total / elapsed


def scratch_mysql(url: str) -> tuple[str, str]:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    mysql_cli(url, f"CREATE DATABASE {name}")
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path=f"/{name}")), name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mysql")
    parser.add_argument("--sqlite")
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    for batch in (100, 1000):
        if args.mysql:
            url, name = scratch_mysql(args.mysql)
            try:
                rate = trio.run(measure, url, batch, args.records)
            finally:
                mysql_cli(args.mysql, f"DROP DATABASE IF EXISTS {name}")
            print(f"mysql   batch={batch:5d}  {rate:10,.0f} records/s")
        if args.sqlite:
            path = Path(args.sqlite).resolve()
            for p in path.parent.glob(path.name + "*"):
                p.unlink()
            rate = trio.run(measure, f"sqlite:///{path}", batch, args.records)
            print(f"sqlite  batch={batch:5d}  {rate:10,.0f} records/s")


if __name__ == "__main__":
    main()
