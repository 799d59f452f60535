"""The plan table: heap order, unchanged schedules kept, parking, lazy deletion."""

from __future__ import annotations

from cluster.spec import JobSpec
from worker.scheduler.plan import PlanTable

T0 = 1_700_000_000_000  # a whole second (and minute) in UTC: 2023-11-14T22:13:20Z


def spec(name: str, expr: str, **extra) -> JobSpec:
    return JobSpec.from_json({"name": name, "command": "true", "cronExpr": expr, **extra})


def drain(table: PlanTable, now_ms: int, grace_ms: int = 5_000) -> list[tuple[str, int]]:
    return [(d.spec.name, d.planned_ms) for d in table.pop_due(now_ms, grace_ms)]


def test_fires_come_out_in_time_order_across_jobs():
    table = PlanTable()
    table.upsert(spec("every-2s", "*/2 * * * * *"), T0)
    table.upsert(spec("every-3s", "*/3 * * * * *"), T0)
    table.upsert(spec("minutely", "* * * * *"), T0)
    fired = drain(table, T0 + 60_000, grace_ms=120_000)
    times = [t for _, t in fired]
    assert times == sorted(times)
    assert fired.count(("minutely", T0 + 40_000)) == 1  # 22:14:00
    assert sum(1 for n, _ in fired if n == "every-2s") == 30
    assert sum(1 for n, _ in fired if n == "every-3s") == 20


def test_next_fire_is_the_earliest_and_skips_stale_heap_items():
    table = PlanTable()
    table.upsert(spec("a", "*/10 * * * * *"), T0)
    table.upsert(spec("b", "*/7 * * * * *"), T0)
    assert table.next_due_ms() == T0 + 1_000  # 22:13:21 (*/7 = 0, 7, ..., 21, ...)
    table.remove("b")
    assert table.next_due_ms() == T0 + 10_000
    table.upsert(spec("a", "*/5 * * * * *"), T0)  # a changed schedule recomputes
    assert table.next_due_ms() == T0 + 5_000
    assert drain(table, T0 + 5_000) == [("a", T0 + 5_000)]


def test_saving_an_unchanged_schedule_keeps_the_next_fire():
    table = PlanTable()
    table.upsert(spec("daily", "0 0 11 * * *"), T0)
    first = table.next_due_ms()
    # Saved again a second before it is due, with another command: same next fire.
    table.upsert(spec("daily", "0 0 11 * * *", command="echo changed"), first - 1_000)
    assert table.next_due_ms() == first
    assert table.get("daily").spec.command == "echo changed"


def test_an_expression_without_future_time_is_parked_not_looped():
    table = PlanTable()
    entry = table.upsert(spec("feb30", "0 0 0 30 2 * *"), T0)
    assert entry.next_ms is None
    assert table.next_due_ms() is None
    assert drain(table, T0 + 10**9) == []
    past_year = table.upsert(spec("y2020", "0 0 0 1 1 * 2020"), T0)
    assert past_year.next_ms is None


def test_years_field_fires_only_in_that_year():
    table = PlanTable()
    table.upsert(spec("newyear-2030", "0 0 0 1 1 * 2030"), T0)
    assert table.next_due_ms() == 1_893_456_000_000  # 2030-01-01T00:00:00Z


def test_a_stall_longer_than_the_grace_skips_ahead_instead_of_replaying():
    table = PlanTable()
    table.upsert(spec("secondly", "* * * * * *"), T0)
    due = list(table.pop_due(T0 + 3_600_000, 5_000))
    late = [d for d in due if d.late]
    on_time = [d for d in due if not d.late]
    assert len(late) == 1  # one report for the whole stall
    assert [d.planned_ms for d in on_time] == [T0 + 3_600_000 - 4_000 + i * 1000 for i in range(5)]
    assert table.next_due_ms() == T0 + 3_601_000


def test_replace_all_converges_on_a_snapshot():
    table = PlanTable()
    for name in ("a", "b", "c"):
        table.upsert(spec(name, "* * * * * *"), T0)
    removed = table.replace_all([spec("b", "* * * * * *"), spec("d", "*/2 * * * * *")], T0)
    assert removed == {"a", "c"}
    assert table.names() == {"b", "d"}
    assert {n for n, _ in drain(table, T0 + 2_000)} == {"b", "d"}


def test_heap_stays_bounded_under_many_updates():
    table = PlanTable()
    for i in range(10_000):
        table.upsert(spec("x", f"*/{i % 50 + 1} * * * * *"), T0)
    assert len(table._heap) <= 2 * len(table) + 64


def test_a_lead_hands_allow_fires_over_early_and_never_marks_them_late():
    table = PlanTable(lead_ms=50)
    table.upsert(spec("s", "* * * * * *", concurrency="allow"), T0)
    assert table.next_due_ms() == T0 + 950
    assert drain(table, T0 + 949) == []
    due = list(table.pop_due(T0 + 950, 5_000))
    assert [(d.planned_ms, d.late) for d in due] == [(T0 + 1000, False)]
    assert table.next_due_ms() == T0 + 1950  # it advanced past the fire let out early


def test_guarded_jobs_get_no_lead_and_a_concurrency_change_moves_the_hand_over():
    table = PlanTable(lead_ms=50)
    table.upsert(spec("f", "*/2 * * * * *"), T0)  # forbid, the default
    table.upsert(spec("a", "* * * * * *", concurrency="allow"), T0)
    assert drain(table, T0 + 1950) == [("a", T0 + 1000), ("a", T0 + 2000)]
    assert drain(table, T0 + 1999) == []
    assert drain(table, T0 + 2000) == [("f", T0 + 2000)]
    table.upsert(spec("f", "*/2 * * * * *", concurrency="replace"), T0 + 2000)
    assert drain(table, T0 + 3900) == [("a", T0 + 3000)]
    table.upsert(spec("f", "*/2 * * * * *", concurrency="allow"), T0 + 3900)
    assert drain(table, T0 + 3999) == [("a", T0 + 4000), ("f", T0 + 4000)]


def test_a_changed_lead_moves_allow_hand_overs_only_and_hands_no_fire_over_twice():
    table = PlanTable(lead_ms=200)
    table.upsert(spec("a", "* * * * * *", concurrency="allow"), T0)
    table.upsert(spec("f", "* * * * * *"), T0)  # forbid: judged at its time, no lead
    assert drain(table, T0 + 800) == [("a", T0 + 1000)]
    table.set_lead(500)  # claims are slow: the next allow fire is due earlier
    assert table.lead_ms == 500
    assert table.next_due_ms() == T0 + 1000  # f's fire; a's next is due at 1500
    assert drain(table, T0 + 1000) == [("f", T0 + 1000)]
    assert drain(table, T0 + 1499) == []
    assert drain(table, T0 + 1500) == [("a", T0 + 2000)]
    table.set_lead(700)  # longer still: a's 3000 is due at 2300, not before
    assert drain(table, T0 + 2299) == [("f", T0 + 2000)]
    assert drain(table, T0 + 2300) == [("a", T0 + 3000)]
    table.set_lead(200)  # fast again: back to 200 ms ahead
    assert drain(table, T0 + 3799) == [("f", T0 + 3000)]
    assert drain(table, T0 + 3800) == [("a", T0 + 4000)]
    assert len(table._heap) <= 2 * len(table) + 64



def test_allow_fires_due_within_half_a_lead_go_with_the_one_due_now_guarded_ones_never():
    """Claim a window, not a fire (issue 14): one wake-up hands over the allow fires of
    the next half lead, so that their claims and marks share transactions; a forbid
    fire is never taken early and ends the window."""
    table = PlanTable(lead_ms=200)
    assert table.window_ms == 100
    for i in range(10):  # allow fires 20 ms apart: a0 at 1000, a1 at 1020, ... a9 at 1180
        table.upsert(spec(f"a{i}", "@every 1s", concurrency="allow",
                          createdAt=T0 + i * 20), T0)
    table.upsert(spec("f", "@every 1s", createdAt=T0 + 150), T0)  # forbid: at 1150
    assert table.next_due_ms() == T0 + 800  # a0's hand-over, a lead before its time
    # a0 is due at 800: the window to 900 takes a1..a5 (due 820..900) with it; the
    # forbid fire (due at its time, 1150) is not taken early.
    assert drain(table, T0 + 800) == [(f"a{i}", T0 + 1000 + i * 20) for i in range(6)]
    assert table.next_due_ms() == T0 + 920  # a6: the next window
    assert drain(table, T0 + 920) == [(f"a{i}", T0 + 1000 + i * 20) for i in range(6, 10)]
    assert drain(table, T0 + 1149) == []
    assert drain(table, T0 + 1150) == [("f", T0 + 1150)]
    # A forbid fire due inside a window ends it: a0..a5 at 1800..1900, f at 2150;
    # make f due at 1850 instead (at its time) and the window stops before it.
    table.upsert(spec("f", "@every 1s", createdAt=T0 + 850), T0 + 1150)
    out = drain(table, T0 + 1800)
    assert out == [("a0", T0 + 2000), ("a1", T0 + 2020), ("a2", T0 + 2040)]
    assert drain(table, T0 + 1850) == [("f", T0 + 1850)]  # no allow fire due: no window
    assert drain(table, T0 + 1860) == [(f"a{i}", T0 + 2000 + i * 20) for i in range(3, 9)]


def test_replace_all_leaves_kept_entries_alone_and_removes_only_the_unnamed():
    """A membership change (shards) sends only the jobs gained; the kept ones keep their
    entry, fire times already advanced included, and are not taken for deleted."""
    table = PlanTable()
    table.upsert(spec("kept", "*/10 * * * * *"), T0)
    table.upsert(spec("gone", "* * * * * *"), T0)
    assert ("kept", T0 + 10_000) in drain(table, T0 + 10_000, grace_ms=60_000)
    kept_entry = table.get("kept")
    removed = table.replace_all([spec("new", "* * * * * *")], T0 + 10_000, kept=["kept"])
    assert removed == {"gone"}
    assert table.get("kept") is kept_entry and kept_entry.next_ms == T0 + 20_000
    assert table.names() == {"kept", "new"}


def test_a_job_handed_over_then_deleted_during_a_gap_is_returned_as_deleted():
    """Regression: replace_all returned only planned entries missing from the snapshot,
    so a job handed over earlier and deleted while the watch was compacted away (the
    full read no longer names it) kept its runs here, and stayed 'handed over' for good."""
    table = PlanTable()
    for name in ("a", "b", "c"):
        table.upsert(spec(name, "* * * * * *"), T0)
    assert table.replace_all([spec("a", "* * * * * *")], T0, handed_over=["b", "c"]) == set()
    assert table.runs_here("b") and table.runs_here("c") and "b" not in table
    # c still exists (still handed over), b was deleted meanwhile, a too
    removed = table.replace_all([], T0, handed_over=["c"])
    assert removed == {"a", "b"}
    assert not table.runs_here("b") and table.runs_here("c")
    # handed over and deleted in one snapshot's view: gone from the next one
    assert table.replace_all([], T0) == {"c"} and not table.runs_here("c")
