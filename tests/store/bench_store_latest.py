"""Measure ``RunStore.latest_runs`` (the jobs list's last runs); not collected by pytest.

    .venv/bin/python tests/store/bench_store_latest.py \
        --mysql "$SCHEDULER_TEST_MYSQL" [--sqlite /tmp/bench.db] [--jobs 10000 --records 1000000]

One grouped query for every job, never one per job. Measured here (2 cores, MariaDB,
10,000 jobs, 1,000,000 records): 0.12-0.15 s; the plan reads the (job_name, sort_time)
index by a loose scan ("Using index for group-by"). The MySQL database named in the URL
is replaced by a throw-away one, as in bench_store_write.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import trio

from bench_store_write import mysql_cli, scratch_mysql

from cluster.store import RunRecord, open_store

BATCH = 20_000


def records(start: int, n: int, jobs: int) -> list[RunRecord]:
    now = 1_700_000_000_000
    return [
        RunRecord(run_id=f"bench-{i:09d}", job_name=f"job-{i % jobs:05d}", worker="worker-1",
                  command="/usr/local/bin/report", output="", err="", exit_code=i % 2,
                  status="failed" if i % 2 else "succeeded", trigger="schedule", attempt=1,
                  plan_time=now + i, schedule_time=now + i, start_time=now + i + 2,
                  end_time=now + i + 40)
        for i in range(start, start + n)
    ]


async def measure(url: str, jobs: int, total: int) -> list[float]:
    async with open_store(url) as store:
        for first in range(0, total, BATCH):
            await store.write_batch(records(first, min(BATCH, total - first), jobs))
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            latest = await store.latest_runs()
            timings.append(time.perf_counter() - started)
            assert len(latest) == min(jobs, total)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mysql")
    parser.add_argument("--sqlite")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    runs = []
    if args.mysql:
        url, name = scratch_mysql(args.mysql)
        try:
            runs.append(("mysql", trio.run(measure, url, args.jobs, args.records)))
        finally:
            mysql_cli(args.mysql, f"DROP DATABASE IF EXISTS {name}")
    if args.sqlite:
        path = Path(args.sqlite).resolve()
        for p in path.parent.glob(path.name + "*"):
            p.unlink()
        runs.append(("sqlite", trio.run(measure, f"sqlite:///{path}", args.jobs, args.records)))
    for backend, timings in runs:
        print(f"{backend:7} {args.jobs} jobs, {args.records:,} records: latest_runs "
              + ", ".join(f"{t * 1000:.0f} ms" for t in timings))


if __name__ == "__main__":
    main()
