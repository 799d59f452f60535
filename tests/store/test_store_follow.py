"""Follow cursors (``RunStore.follow``): every record that lands after a point, once,
in id order, on both backends; ids committed out of order (holes) are waited for."""

from __future__ import annotations

import pytest

from cluster.store import InvalidCursor, RunRecord
from cluster.store._follow import HOLE_WAIT_MS, MAX_HOLES, FollowCursor

NOW = 1_700_000_000_000


def rec(run_id: str, job: str = "a", start: int = 1_000) -> RunRecord:
    return RunRecord(run_id=run_id, job_name=job, worker="w1", command="true", output="",
                     err="", exit_code=0, status="succeeded", trigger="schedule", attempt=1,
                     plan_time=start, schedule_time=start, start_time=start,
                     end_time=start + 1)


async def test_follow_gives_each_record_once_in_id_order_and_pages_by_cursor(store):
    await store.write_batch([rec("old-1"), rec("old-2")])
    after = await store.follow_start(NOW)
    page = await store.follow(after, now_ms=NOW)
    assert (page.records, page.caught_up) == ([], True)
    # Recorded later but started earlier: order is the order they landed, not their time.
    await store.write_batch([rec("n1", start=9_000), rec("x", job="b"), rec("n2", start=10)])
    await store.write_batch([rec("n3"), rec("n4")])
    page = await store.follow(page.after, now_ms=NOW, job_name="a", limit=3)
    assert [r.run_id for r in page.records] == ["n1", "n2"]  # x: read, not matched
    assert page.caught_up is False
    page = await store.follow(page.after, now_ms=NOW, job_name="a", limit=3)
    assert [r.run_id for r in page.records] == ["n3", "n4"] and page.caught_up
    again = await store.follow(page.after, now_ms=NOW)
    assert again.records == [] and again.caught_up
    # An upsert keeps its id: a record rewritten is not followed twice.
    await store.write_batch([rec("n4", start=5)])
    assert (await store.follow(page.after, now_ms=NOW)).records == []


@pytest.mark.parametrize("bad", ["", "now", "x" * 40, FollowCursor(1).encode() + "A",
                                 "ZjE6MTp4"])  # f1:1:x
async def test_a_follow_cursor_not_issued_by_the_store_is_refused(store, bad):
    with pytest.raises(InvalidCursor, match="after"):
        await store.follow(bad, now_ms=NOW)


def test_an_id_below_the_cursor_that_lands_late_is_still_given_then_forgotten():
    cursor = FollowCursor(4).advance([5, 8], NOW)  # 6 and 7 still in flight
    assert (cursor.after, cursor.hole_ids) == (8, [6, 7])
    cursor = cursor.advance([7, 9], NOW + 1_000)  # 7 committed late
    assert (cursor.after, cursor.hole_ids) == (9, [6])
    assert FollowCursor.decode(cursor.encode()) == cursor
    # An id never used (burned by an upsert or a rollback) is given up after the wait.
    assert cursor.advance([], NOW + HOLE_WAIT_MS).hole_ids == []
    big = FollowCursor(0).advance([10_000], NOW)
    assert len(big.holes) == MAX_HOLES and big.hole_ids[-1] == 9_999


def test_the_start_cursor_waits_for_ids_below_the_newest_still_in_flight():
    cursor = FollowCursor.start([10, 9, 7, 4], NOW)
    assert (cursor.after, cursor.hole_ids) == (10, [5, 6, 8])
    assert FollowCursor.start([], NOW) == FollowCursor(0)
