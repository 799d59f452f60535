"""Run statistics for the dashboard: runs per bucket by status, lateness percentiles
per bucket, the jobs that failed most, and the failures of the last 24 h.

    summary = await store.stats.summary("24h", now_ms)

Every figure is an SQL ``GROUP BY``; the browser never downloads records. SQLite
groups the ``job_log`` rows themselves (small installations; its indexes on
``sort_time`` and ``(status, sort_time)`` serve it). MySQL/MariaDB reads a rollup
kept beside the table (``_rollup``): grouping a million rows takes the server
0.6-1 s, reading their rollup a few ms (BENCHMARKS.md "Dashboard statistics").

What counts (DESIGN §7 "Statistics"):

- a run is a record, bucketed by its ``sort_time`` (start time, or schedule time for
  a run that never started); a coalesced ``skipped`` record counts once;
- lateness is ``start_time - plan_time`` of the records with a start time, kept as a
  histogram of quarter-octave buckets (``lateness_bucket``); a percentile is the
  upper bound of the bucket it falls in: exact for 0, at most 19 % above the true
  value otherwise;
- failures are the statuses the alerts call failures: failed, timeout, lost, killed
  (not ``replaced``, not ``skipped``).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ._backend import Backend
from ._errors import InvalidQuery
from ._schema import TABLE

if TYPE_CHECKING:  # made by RunStore; it imports this module
    from ._rollup import Rollup

__all__ = ["FAILURE_STATUSES", "STATS_WINDOWS", "RunStats", "StatsSummary", "StatsWindow",
           "TopJob", "lateness_bucket", "lateness_percentile"]

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 3_600_000
DAY_MS: Final = 24 * HOUR_MS
FAILURE_STATUSES: Final = ("failed", "timeout", "lost", "killed")  # as the alerts' rule
TOP_JOBS: Final = 10
SUBBUCKETS: Final = 4  # lateness histogram buckets per doubling: 2^(1/4) = +19 % at most


@dataclass(frozen=True, slots=True)
class StatsWindow:
    """A window ending now, cut in buckets of ``bucket_ms``: ``span_ms / bucket_ms``
    buckets, the last of which holds now (and is still filling)."""

    name: str
    span_ms: int
    bucket_ms: int

    @classmethod
    def named(cls, name: str) -> StatsWindow:
        window = STATS_WINDOWS.get(name)
        if window is None:
            raise InvalidQuery("window", name, "one of " + ", ".join(STATS_WINDOWS))
        return window

    def buckets(self, now_ms: int) -> tuple[int, int]:
        """First and last bucket numbers (``sort_time // bucket_ms``), both included."""
        last = now_ms // self.bucket_ms
        return last - self.span_ms // self.bucket_ms + 1, last


STATS_WINDOWS: Final[Mapping[str, StatsWindow]] = {
    "1h": StatsWindow("1h", HOUR_MS, MINUTE_MS),
    # 1,440 minutes: more bars than a chart has pixels, and 5 times the rows to read
    "24h": StatsWindow("24h", DAY_MS, 5 * MINUTE_MS),
    "7d": StatsWindow("7d", 7 * DAY_MS, HOUR_MS),  # 10,080 minutes: hours read better
}


@dataclass(frozen=True, slots=True)
class TopJob:
    job_name: str
    failures: int


@dataclass(frozen=True, slots=True)
class StatsSummary:
    """The figures of one window. ``bucket_starts[i]`` is the start (epoch ms) of the
    i-th bucket; ``runs[status][i]``, ``lateness_p50[i]``, ``lateness_p99[i]`` belong
    to it (lateness None: no started run in it). ``partial``: the store is still
    building its rollup of older records, so buckets before ``complete_from_ms``
    may be missing runs."""

    window: StatsWindow
    bucket_starts: tuple[int, ...]
    runs: Mapping[str, tuple[int, ...]]
    lateness_p50: tuple[int | None, ...]
    lateness_p99: tuple[int | None, ...]
    top_failing: tuple[TopJob, ...]
    failures_24h: int
    partial: bool = False
    complete_from_ms: int | None = None


def lateness_bucket(lateness_ms: int) -> int:
    """The histogram bucket of a lateness: 0 for <= 0 ms, else k >= 1 such that
    2^((k-1)/4) <= ms < 2^(k/4). The SQL (``lateness_sql``) computes the same."""
    if lateness_ms <= 0:
        return 0
    return math.floor(math.log2(lateness_ms) * SUBBUCKETS) + 1


def bucket_upper_ms(k: int) -> int:
    """The largest whole number of ms in bucket ``k`` (its upper bound is exclusive)."""
    return 0 if k <= 0 else math.ceil(2 ** (k / SUBBUCKETS)) - 1


def lateness_percentile(histogram: Mapping[int, int], q: float) -> int | None:
    """The q-quantile (0 < q <= 1) of a lateness histogram, as its bucket's upper
    bound in ms (the nearest-rank rule); None for an empty histogram."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for k in sorted(histogram):
        seen += histogram[k]
        if seen >= rank:
            return bucket_upper_ms(k)
    raise AssertionError("unreachable: the ranks add up to total")


def lateness_sql(dialect: str) -> str:
    """The SQL of ``lateness_bucket(start_time - plan_time)``."""
    late = "(start_time - plan_time)"
    if dialect == "mysql":
        value = f"CAST(FLOOR(LOG2({late}) * {SUBBUCKETS}) AS SIGNED) + 1"  # not a DOUBLE
    else:  # SQLite: CAST truncates, which is floor for the positive values here
        value = f"CAST(log2({late}) * {SUBBUCKETS} AS INTEGER) + 1"
    return f"CASE WHEN {late} <= 0 THEN 0 ELSE {value} END"


def div(dialect: str, a: str, b: int) -> str:
    """Integer division of a non-negative column by a constant."""
    return f"{a} DIV {b}" if dialect == "mysql" else f"{a} / {b}"


def raw_aggregates(dialect: str, mark: str, grain_ms: int) -> dict[str, str]:
    """SELECTs of (bucket, key, runs) over job_log rows with ``mark`` <= sort_time <
    ``mark``, one per kind: ``s`` runs by status, ``l`` lateness histogram, ``f``
    failures by job. The rollup stores exactly these rows."""
    bucket = div(dialect, "sort_time", grain_ms)
    failures = ", ".join(f"'{s}'" for s in FAILURE_STATUSES)
    where = f"sort_time >= {mark} AND sort_time < {mark}"
    return {
        "s": f"SELECT {bucket}, status, COUNT(*) FROM {TABLE} WHERE {where} GROUP BY 1, 2",
        "l": f"SELECT {bucket}, {lateness_sql(dialect)}, COUNT(*) FROM {TABLE} "
             f"WHERE {where} AND start_time IS NOT NULL GROUP BY 1, 2",
        "f": f"SELECT {bucket}, job_name, COUNT(*) FROM {TABLE} "
             f"WHERE {where} AND status IN ({failures}) GROUP BY 1, 2",
    }


class RunStats:
    """The statistics of one RunStore (``RunStore.stats``): from the rows (SQLite) or
    from the rollup (MySQL). ``ready`` makes job_log exist first."""

    def __init__(self, backend: Backend, ready: Callable[[], Awaitable[None]],
                 rollup: Rollup | None) -> None:
        self._backend = backend
        self._ready = ready  # the RunStore's: job_log exists
        self._rollup = rollup

    def forget_schema(self) -> None:
        if self._rollup is not None:
            self._rollup.forget_schema()

    async def build(self, budget_s: float) -> bool:
        """Bring the rollup (MySQL) up to date, backfilling for up to ``budget_s``;
        True once it holds every record a window can reach (SQLite: always)."""
        if self._rollup is None:
            return True
        await self._ready()
        return await self._rollup.refresh(budget_s) is None

    async def summary(self, window: str | StatsWindow, now_ms: int, *,
                      backfill_s: float | None = None) -> StatsSummary:
        """``backfill_s``: how long this summary may build older records into the
        rollup (MySQL; None: the rollup's BACKFILL_BUDGET_S). 0 when ``build`` runs
        apart, as in the master: the summary then only follows what changed."""
        w = window if isinstance(window, StatsWindow) else StatsWindow.named(window)
        await self._ready()
        first, last = w.buckets(now_ms)
        day_first = (now_ms - DAY_MS) // MINUTE_MS + 1
        if self._rollup is not None:
            complete_from = await (self._rollup.refresh() if backfill_s is None
                                   else self._rollup.refresh(backfill_s))
            rows = await self._rollup.read(w.bucket_ms, first, last)
            top = await self._rollup.top_failing(w.bucket_ms, first, last, TOP_JOBS)
            failures = await self._rollup.failures(day_first, now_ms // MINUTE_MS)
            partial = complete_from is not None and complete_from > first * w.bucket_ms
            return build(w, first, last, rows, top, failures, partial,
                         complete_from if partial else None)
        rows = await self._raw_rows(w.bucket_ms, first * w.bucket_ms, (last + 1) * w.bucket_ms)
        top = await self._raw_top(first * w.bucket_ms, (last + 1) * w.bucket_ms)
        failures = await self._raw_failures(day_first * MINUTE_MS, now_ms + 1)
        return build(w, first, last, rows, top, failures)

    async def _raw_rows(self, grain_ms: int, since: int, until: int
                        ) -> list[tuple[str, int, str, int]]:
        d = self._backend.dialect
        rows: list[tuple[str, int, str, int]] = []
        for kind, sql in raw_aggregates(d.name, d.mark, grain_ms).items():
            for bucket, key, runs in await self._backend.fetch(sql, [since, until]):
                rows.append((kind, int(bucket), str(key), int(runs)))
        return rows

    async def _raw_top(self, since: int, until: int) -> list[TopJob]:
        m = self._backend.dialect.mark
        statuses = ", ".join([m] * len(FAILURE_STATUSES))
        found = await self._backend.fetch(
            f"SELECT job_name, COUNT(*) FROM {TABLE} WHERE status IN ({statuses}) AND "
            f"sort_time >= {m} AND sort_time < {m} GROUP BY job_name "
            f"ORDER BY 2 DESC, 1 LIMIT {TOP_JOBS}", [*FAILURE_STATUSES, since, until])
        return [TopJob(str(name), int(n)) for name, n in found]

    async def _raw_failures(self, since: int, until: int) -> int:
        m = self._backend.dialect.mark
        statuses = ", ".join([m] * len(FAILURE_STATUSES))
        found = await self._backend.fetch(
            f"SELECT COUNT(*) FROM {TABLE} WHERE status IN ({statuses}) AND "
            f"sort_time >= {m} AND sort_time < {m}", [*FAILURE_STATUSES, since, until])
        return int(found[0][0])


def build(w: StatsWindow, first: int, last: int, rows: Iterable[tuple[str, int, str, int]],
          top: Sequence[TopJob], failures_24h: int, partial: bool = False,
          complete_from_ms: int | None = None) -> StatsSummary:
    """The summary from (kind, bucket, key, runs) rows of the window's buckets."""
    n = last - first + 1
    runs: dict[str, list[int]] = {}
    histograms: list[dict[int, int]] = [{} for _ in range(n)]
    for kind, bucket, key, count in rows:
        i = bucket - first
        if not 0 <= i < n or count == 0:
            continue
        if kind == "s":
            runs.setdefault(key, [0] * n)[i] += count
        elif kind == "l":
            k = int(key)
            histograms[i][k] = histograms[i].get(k, 0) + count
    return StatsSummary(
        window=w,
        bucket_starts=tuple((first + i) * w.bucket_ms for i in range(n)),
        runs={status: tuple(counts) for status, counts in sorted(runs.items())},
        lateness_p50=tuple(lateness_percentile(h, 0.5) for h in histograms),
        lateness_p99=tuple(lateness_percentile(h, 0.99) for h in histograms),
        top_failing=tuple(top), failures_24h=failures_24h, partial=partial,
        complete_from_ms=complete_from_ms)
