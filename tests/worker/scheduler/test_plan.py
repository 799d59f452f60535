"""The plan table: heap order, unchanged schedules kept, parking, lazy deletion."""

from __future__ import annotations

from cluster.spec import JobSpec
from worker.scheduler.plan import WINDOW_MAX_FIRES, WINDOW_MIN_FIRES, WINDOW_REACH_MS, PlanTable

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
    assert drain(table, T0 + 3899) == [("a", T0 + 3000)]  # a's 4000: due from 3950
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



def test_allow_fires_due_within_a_lead_go_with_the_one_due_now_guarded_ones_never():
    """Claim a window, not a fire (issue 14): one wake-up hands over the allow fires of
    the next lead, so that their claims and marks share transactions; a window that
    holds WINDOW_MIN_FIRES already does not reach further; a forbid fire is never taken
    early and ends the window."""
    table = PlanTable(lead_ms=200)
    assert table.window_ms == 200 and WINDOW_MIN_FIRES == 8
    for i in range(30):  # allow fires 10 ms apart: a0 at 1000, a1 at 1010, ... a29 at 1290
        table.upsert(spec(f"a{i}", "@every 1s", concurrency="allow",
                          createdAt=T0 + i * 10), T0)
    table.upsert(spec("f", "@every 1s", createdAt=T0 + 150), T0)  # forbid: at 1150
    assert table.next_due_ms() == T0 + 800  # a0's hand-over, a lead before its time
    # a0 is due at 800: the window to 1000 takes a1..a20 (due 810..1000) with it, 21
    # fires, dense: it does not reach to a21 (due 1010).
    assert drain(table, T0 + 800) == [(f"a{i}", T0 + 1000 + i * 10) for i in range(21)]
    assert table.next_due_ms() == T0 + 1010  # a21: the next window
    # Its window (to 1210) ends at the forbid fire, due at its time (1150), not taken early.
    assert drain(table, T0 + 1010) == [(f"a{i}", T0 + 1000 + i * 10) for i in range(21, 30)]
    assert drain(table, T0 + 1149) == []
    assert drain(table, T0 + 1150) == [("f", T0 + 1150)]
    # A forbid fire due inside a window ends it, thin or not: a0..a29 at 2000..2290, f
    # at 2150; make f due at 1850 instead (at its time) and the window stops before it.
    table.upsert(spec("f", "@every 1s", createdAt=T0 + 850), T0 + 1150)
    out = drain(table, T0 + 1800)
    assert out == [(f"a{i}", T0 + 2000 + i * 10) for i in range(6)]  # a5 due 1850, f after
    assert drain(table, T0 + 1850) == [("f", T0 + 1850)]  # no allow fire due: no window
    assert drain(table, T0 + 1860) == [(f"a{i}", T0 + 2000 + i * 10) for i in range(6, 27)]


def test_a_thin_window_reaches_up_to_a_second_further_until_it_holds_eight_fires():
    """At a low rate half a lead rarely holds two fires: a window with fewer than
    WINDOW_MIN_FIRES takes the allow fires due less than WINDOW_REACH_MS after its
    wake-up, and stops once it holds WINDOW_MIN_FIRES (issue 14 target 4)."""
    assert (WINDOW_MIN_FIRES, WINDOW_REACH_MS) == (8, 1000)
    table = PlanTable(lead_ms=200)
    for i in range(12):  # allow fires 100 ms apart: a0 at 10000, ... a11 at 11100
        table.upsert(spec(f"a{i}", "@every 10s", concurrency="allow",
                          createdAt=T0 + i * 100), T0)
    table.upsert(spec("b", "@every 10s", concurrency="allow", createdAt=T0 + 1800), T0)
    assert table.next_due_ms() == T0 + 9800
    # Half a lead (to 9900) holds a0 and a1; the reach takes a2..a7 (due 10000..10300)
    # and stops at eight fires.
    assert drain(table, T0 + 9800) == [(f"a{i}", T0 + 10000 + i * 100) for i in range(8)]
    assert table.next_due_ms() == T0 + 10600  # a8 (at 10800)
    # The next reach holds a8..a11 only: b (at 11800, due 11600) is a whole second after
    # the wake-up, handed over at its own (less than lead + 1 s ahead, never more).
    assert drain(table, T0 + 10600) == [(f"a{i}", T0 + 10000 + i * 100) for i in range(8, 12)]
    assert table.next_due_ms() == T0 + 11600
    assert drain(table, T0 + 11600) == [("b", T0 + 11800)]


def test_a_thin_window_does_not_reach_past_a_forbid_fire_nor_without_an_allow_fire_due():
    table = PlanTable(lead_ms=200)
    table.upsert(spec("x", "@every 10s", concurrency="allow", createdAt=T0), T0)  # 10000
    table.upsert(spec("f", "@every 10s", createdAt=T0 + 300), T0)  # forbid: 10300
    table.upsert(spec("y", "@every 10s", concurrency="allow", createdAt=T0 + 600), T0)
    table.upsert(spec("r", "@every 10s", concurrency="replace", createdAt=T0 + 1500), T0)
    assert drain(table, T0 + 9800) == [("x", T0 + 10000)]  # f (due 10300) ends the reach
    assert drain(table, T0 + 10300) == [("f", T0 + 10300)]  # forbid: no window of its own
    assert drain(table, T0 + 10399) == []
    # y is due at 10400: its reach (to 11399) ends at r, never taken early.
    assert drain(table, T0 + 10400) == [("y", T0 + 10600)]
    assert drain(table, T0 + 11499) == []
    assert drain(table, T0 + 11500) == [("r", T0 + 11500)]


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


def test_a_full_window_takes_no_fire_early_but_every_fire_due_now_goes():
    """A window stops taking fires early once it holds WINDOW_MAX_FIRES (each is a
    process held ahead, counted in the worker's capacity); fires due now all go."""
    assert WINDOW_MAX_FIRES == 32
    table = PlanTable(lead_ms=200)
    for i in range(40):  # allow fires 2 ms apart: a0 at 1000 ... a39 at 1078
        table.upsert(spec(f"a{i:02}", "@every 1s", concurrency="allow",
                          createdAt=T0 + i * 2), T0)
    assert drain(table, T0 + 800) == [(f"a{i:02}", T0 + 1000 + i * 2) for i in range(32)]
    assert table.next_due_ms() == T0 + 864  # a32: the next window
    burst = PlanTable(lead_ms=200)
    for i in range(40):  # a burst: all due at once
        burst.upsert(spec(f"b{i:02}", "* * * * * *", concurrency="allow"), T0)
    assert len(drain(burst, T0 + 800)) == 40
