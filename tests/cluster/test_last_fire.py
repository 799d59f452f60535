"""state/<name> values (cluster.last_fire): the last fire on every path, and a catch-up
cursor that only scheduled times move, forward; the earlier decimal value still reads."""

from __future__ import annotations

import pytest

from cluster.last_fire import LastFire, LastFireDecodeError

T = 1_700_000_000_000


def test_an_earlier_release_value_is_the_cursor_alone():
    last = LastFire.from_bytes(b"1700000000000")
    assert (last.cursor_ms, last.planned_ms, last.trigger, last.run_id) == (T, T, "schedule", "")


def test_round_trip():
    last = LastFire.first(T, "catchup", "r1", 1, "w1", T + 5)
    assert LastFire.from_bytes(last.to_bytes()) == last


@pytest.mark.parametrize(("trigger", "planned_ms", "cursor_ms"), [
    ("schedule", T + 9000, T + 9000),  # a newer scheduled time moves it
    ("catchup", T + 9000, T + 9000),
    ("schedule", T + 1000, T + 5000),  # an older one (a recovered run) does not move it back
    ("manual", T + 60_000, T + 5000),  # neither does a manual run, however late
    ("retry", T + 1000, T + 5000),
    ("chain", T + 60_000, T + 5000),
])
def test_the_cursor_moves_only_forward_and_only_for_scheduled_times(trigger, planned_ms, cursor_ms):
    old = LastFire.first(T + 5000, "schedule", "r0", 1, "w0", T + 5000)
    new = old.after(planned_ms, trigger, "r1", 2, "w1", T + 70_000)
    assert (new.cursor_ms, new.planned_ms, new.trigger, new.run_id, new.attempt, new.worker) == \
        (cursor_ms, planned_ms, trigger, "r1", 2, "w1")


def test_a_manual_first_fire_sets_no_cursor():
    assert LastFire.first(T, "manual", "r", 1, "w", T).cursor_ms is None


@pytest.mark.parametrize("value", [b"", b"soon", b"{}", b'{"planTime": "x", "trigger": "schedule"}',
                                   b"[1]", b"\xff"])
def test_anything_else_is_a_decode_error(value):
    with pytest.raises(LastFireDecodeError, match="not a last fire"):
        LastFire.from_bytes(value)
