"""Our workers' run records, read back from the store, as ``Observed`` fires.

The store is the ground truth the issue asks for: lateness is the record's
``start_time - plan_time``, the scheduler's own decision time is ``schedule_time``,
and the probe's output is the child's own lateness.
"""

from __future__ import annotations

from cluster.store import MAX_PAGE_LIMIT, RunRecord, RunStatus, open_store

from ._load import parse_child_ms
from ._stats import Observed

STARTED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED})


async def read_records(db_url: str, *, since_ms: int, job_prefix: str = "") -> list[RunRecord]:
    """Every record whose sort time (start, else schedule time) is at or after ``since_ms``."""
    out: list[RunRecord] = []
    cursor = None
    async with open_store(db_url) as store:
        while True:
            page = await store.query(since_ms=since_ms, cursor=cursor, limit=MAX_PAGE_LIMIT)
            out.extend(r for r in page.records if r.job_name.startswith(job_prefix))
            if page.next_cursor is None:
                return out
            cursor = page.next_cursor


def observed(records: list[RunRecord]) -> list[Observed]:
    """Runs that started (skipped or lost records are not runs of the fire)."""
    return [
        Observed(r.job_name, r.plan_time, r.start_time, parse_child_ms(r.output), r.worker,
                 r.schedule_time)
        for r in records if r.status in STARTED and r.start_time is not None
    ]


def status_counts(records: list[RunRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        counts[str(r.status)] = counts.get(str(r.status), 0) + 1
    return counts
