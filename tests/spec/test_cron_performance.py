"""Wall-time bounds (generous: 2 slow cores, other tests running) for the hot paths.

Measured on the 2-core dev box: cached parse ~0.6 us, next_after ~5-8 us in UTC and
~10-20 us in Europe/Berlin, ~1 us for @every; croniter needed 100-190 us + 40-180 us.
"""

from __future__ import annotations

import time

import pytest

from cluster.cron import parse_schedule

T0 = 1_750_000_000_000


@pytest.mark.parametrize("expr", ["0 0 0 30 2 * *", "0 0 31 2,4,6,9,11 *",
                                  "0 0 0 1 1 * 1999", "0 0 0 29 2 * 2097-2099",
                                  "0 0 0 * 2 1#5 2045-2071", "0 0 0 31 2 * 1970-2099"])
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
def test_no_next_time_is_none_and_quick(expr: str, zone: str) -> None:
    schedule = parse_schedule(expr, timezone=zone)
    start = time.perf_counter()
    for t in range(T0, T0 + 100 * 86_400_000, 86_400_000):
        assert schedule.next_after(t) is None
    assert time.perf_counter() - start < 0.5  # 100 calls


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
def test_next_after_costs_microseconds(zone: str) -> None:
    schedules = [parse_schedule(e, timezone=zone) for e in
                 ("*/5 * * * *", "0 3 * * 1-5", "*/10 * * * * *", "15 2 1,15 * *")]
    start = time.perf_counter()
    for i in range(5_000):
        for schedule in schedules:
            schedule.next_after(T0 + i * 7_919)
    per_call_us = (time.perf_counter() - start) / 20_000 * 1e6
    assert per_call_us < 200  # measured 5-20 us; croniter 40-180 us


def test_many_distinct_expressions_parse_fast() -> None:
    exprs = [f"{i % 60} {i // 60 % 60} {i // 3600 % 24} * * {('*', '1-5', '0,6')[i % 3]}"
             for i in range(20_000)]
    start = time.perf_counter()
    for expr in exprs:
        parse_schedule(expr).next_after(T0)
    assert time.perf_counter() - start < 5  # measured ~0.15 s: ~8 us per job
