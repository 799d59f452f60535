"""What the RunStore tests share: a sample run record and a reader of every stored id.

The fixtures that open a store on each backend (``store_url``, ``store``) are in the
conftest.py beside it.
"""

from __future__ import annotations

from cluster.store import RunRecord

T0 = 1_700_000_000_000
MIB = 1024 * 1024


def run(i: int, **overrides: object) -> RunRecord:
    """Run ``i`` of job-<i % 3>, started at T0 + i s."""
    fields: dict[str, object] = dict(
        run_id=f"run-{i:05d}", job_name=f"job-{i % 3}", worker="w1", command=f"echo {i}",
        output=f"out {i}\n", err="", exit_code=0, status="succeeded", trigger="schedule",
        attempt=1, plan_time=T0 + i * 1000, schedule_time=T0 + i * 1000 + 3,
        start_time=T0 + i * 1000 + 5, end_time=T0 + i * 1000 + 900,
    )
    fields.update(overrides)
    return RunRecord(**fields)  # type: ignore[arg-type]


async def all_ids(store) -> list[str]:
    page = await store.query(limit=1000)
    return [r.run_id for r in page.records]
