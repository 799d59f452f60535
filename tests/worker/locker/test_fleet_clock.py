"""Who is out of step with the fleet's median clock (``worker.locker.fleet_clock``)."""

from __future__ import annotations

from worker.locker.fleet_clock import deviations, out_of_step


def test_the_median_outvotes_one_clock_ahead_and_one_behind() -> None:
    seen_by_even = {"even": 0, "ahead": 3_000, "behind": -3_000}
    seen_by_ahead = {"ahead": 0, "even": -3_000, "behind": -6_000}
    for offsets in (seen_by_even, seen_by_ahead):  # every worker reaches the same verdict
        assert out_of_step(offsets, 1_000) == {"ahead": 3_000, "behind": -3_000}


def test_within_the_limit_nobody_is_out_of_step() -> None:
    assert out_of_step({"a": 0, "b": 900, "c": -900}, 1_000) == {}
    assert deviations({"a": 0, "b": 900, "c": -900}) == {"a": 0, "b": 900, "c": -900}


def test_two_clocks_have_no_majority() -> None:
    assert out_of_step({"a": 0, "b": 3_000}, 1_000) == {}
    assert out_of_step({"a": 0}, 1_000) == {}
