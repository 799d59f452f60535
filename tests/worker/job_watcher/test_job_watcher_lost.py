"""LostRunMatcher: pairing run and worker deletions of one revision, in either order."""

from __future__ import annotations

from cluster.presence import RunningInfo
from worker.job_watcher.lost_runs import LostRunMatcher


def run_of(worker_id: str, run_id: str) -> RunningInfo:
    return RunningInfo(run_id, "a", worker_id, planned_ms=1000, attempt=1,
                       trigger="schedule", started_ms=2000)


def test_runs_seen_before_their_worker_are_lost_when_it_goes_at_their_revision():
    m = LostRunMatcher(window_s=10)
    r1, r2, other = run_of("w2", "r1"), run_of("w2", "r2"), run_of("w3", "r3")
    assert m.run_deleted(r1, 50, now=0) is False
    assert m.run_deleted(r2, 50, now=0) is False
    assert m.run_deleted(other, 50, now=0) is False  # same revision, another worker
    assert m.worker_deleted("w2", 50, now=1) == [r1, r2]
    assert m.worker_deleted("w2", 50, now=1) == []  # each run reported once
    assert m.pending() == 2  # w3's run and w2's deletion, until they expire


def test_runs_seen_after_their_worker_are_lost_too():
    m = LostRunMatcher(window_s=10)
    assert m.worker_deleted("w2", 50, now=0) == []
    assert m.run_deleted(run_of("w2", "r1"), 50, now=1) is True
    assert m.run_deleted(run_of("w2", "r2"), 50, now=2) is True  # all its runs share it


def test_a_deletion_at_another_revision_is_a_normal_end():
    m = LostRunMatcher(window_s=10)
    assert m.run_deleted(run_of("w2", "r1"), 49, now=0) is False  # ended while w2 lived
    assert m.worker_deleted("w2", 50, now=1) == []
    assert m.run_deleted(run_of("w2", "r2"), 48, now=2) is False
    assert m.run_deleted(run_of("w3", "r3"), 50, now=2) is False  # w3 did not go at 50


def test_halves_that_wait_longer_than_the_window_are_forgotten():
    m = LostRunMatcher(window_s=10)
    m.run_deleted(run_of("w2", "r1"), 50, now=0)
    assert m.worker_deleted("w2", 50, now=10.5) == []
    assert m.run_deleted(run_of("w2", "r2"), 50, now=20) is True  # 9.5 s after w2
    assert m.run_deleted(run_of("w2", "r3"), 50, now=21) is False  # 10.5 s after w2
    m.worker_deleted("w9", 99, now=40)
    assert m.pending() == 1  # everything older than the window is gone
