"""The dashboard's statistics over 1,000,000 run records in MariaDB (issue 13: < 200 ms).

    python -m benchmarks.stats [--records 1000000] [--jobs 1000] [--repeat 20]

On a private MariaDB (``scripts/services.py``): creates ``job_log`` through the store,
loads ``--records`` records spread evenly over the last 7 days (so the 7 d window
holds them all, the 24 h one a seventh) with one ``INSERT ... SELECT`` from MariaDB's
SEQUENCE engine (~25 s for a million; 5 % failed, 5 % timeout, 5 % skipped, lateness
0-49 ms), builds the rollup (timed), then times ``RunStore.stats.summary`` for each
window ``--repeat`` times (median, p99, max), each preceded by a batch of 100 new
records so that every summary also recomputes the minute they changed.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time

import trio

from cluster.store import RunRecord, open_store

from ._machine import machine_info, machine_line
from ._report import RESULTS_DIR, write_json, write_text
from ._servers import mariadb_server, scratch_dir
from .sink import record


def fresh(prefix: str, i: int, now_ms: int) -> RunRecord:
    """A record of the benchmark's own, run just now."""
    r = record(prefix, i)
    return dataclasses.replace(r, plan_time=now_ms - 5, schedule_time=now_ms - 5,
                               start_time=now_ms, end_time=now_ms + 30)

WINDOWS = ("1h", "24h", "7d")
WEEK_MS = 7 * 24 * 3600 * 1000


def load_sql(records: int, jobs: int, now_ms: int) -> str:
    step = WEEK_MS // records
    status = ("ELT(1 + (seq % 20 > 16) + (seq % 20 > 17) + (seq % 20 > 18), "
              "'succeeded', 'failed', 'timeout', 'skipped')")
    started = "IF(seq % 20 = 19, NULL, {t} + (seq * 7 % 50))"
    t = f"({now_ms} - seq * {step})"
    return (
        "INSERT INTO job_log (run_id, job_name, worker, command, output, err, exit_code, "
        "status, `trigger`, attempt, plan_time, schedule_time, start_time, end_time, "
        "sort_time) SELECT CONCAT('r', seq), CONCAT('job-', seq % " + str(jobs) + "), 'w1', "
        "'echo hi', REPEAT('x', 200), '', 0, " + status + ", 'schedule', 1, "
        f"{t}, {t}, {started.format(t=t)}, {t} + 300, "
        f"IF(seq % 20 = 19, {t}, {t} + (seq * 7 % 50)) FROM seq_1_to_{records}")


def summarize(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"median_ms": round(statistics.median(ordered), 1), "p99_ms": round(p99, 1),
            "max_ms": round(ordered[-1], 1)}


async def measure(url: str, repeat: int) -> dict[str, object]:
    results: dict[str, object] = {}
    async with open_store(url) as store:
        started = time.perf_counter()
        assert await store.stats.build(budget_s=600)
        results["build_s"] = round(time.perf_counter() - started, 1)
        print(f"rollup built in {results['build_s']} s", file=sys.stderr)
        n = 0
        for window in WINDOWS:
            samples = []
            for _ in range(repeat):
                now = int(time.time() * 1000)
                await store.write_batch([fresh(f"new-{n}", i, now) for i in range(100)])
                n += 1
                t = time.perf_counter()
                summary = await store.stats.summary(window, now)
                samples.append((time.perf_counter() - t) * 1000)
                assert not summary.partial
            results[window] = summarize(samples)
            print(f"{window}: {results[window]}", file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    info = machine_info("benchmarks.stats")
    with scratch_dir("stats") as base, mariadb_server(base) as maria:
        url = maria.url()

        async def create() -> None:
            async with open_store(url) as store:
                await store.ping()
        trio.run(create)
        started = time.perf_counter()
        maria.sql("USE scheduler; " + load_sql(args.records, args.jobs, int(time.time() * 1000)))
        load_s = round(time.perf_counter() - started, 1)
        print(f"{args.records} records loaded in {load_s} s", file=sys.stderr)
        results = trio.run(measure, url, args.repeat)
    data = {"machine": info, "records": args.records, "jobs": args.jobs,
            "repeat": args.repeat, "load_s": load_s, **results}
    write_json(RESULTS_DIR / "stats.json", data)
    lines = [f"# Dashboard statistics, {args.records:,} records", "", machine_line(info), "",
             f"load {load_s} s, rollup build {results['build_s']} s", "",
             "| window | median ms | p99 ms | max ms |", "|---|---|---|---|"]
    for w in WINDOWS:
        r = results[w]
        lines.append(f"| {w} | {r['median_ms']} | {r['p99_ms']} | {r['max_ms']} |")
    write_text(RESULTS_DIR / "stats.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
