"""Passed-over fires: every one counted, the log told at most once per interval."""

from __future__ import annotations

import logging

from worker.scheduler.misfires import MisfireLog


def test_a_burst_of_misfires_is_one_warning_then_a_summary(caplog, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("worker.scheduler.misfires.time.monotonic", lambda: clock[0])
    misfires = MisfireLog(5000, interval_s=1.0)
    with caplog.at_level(logging.WARNING, logger="worker.scheduler"):
        for i in range(500):
            misfires.passed_over(f"job{i}", 1_000 + i, 6_000 + i, "it waited for the locker")
        clock[0] += 1.0
        misfires.passed_over("last", 2_000, 5_500, "it waited for the locker")
    assert misfires.count == 501
    assert len(caplog.records) == 2
    first, summary = (r.getMessage() for r in caplog.records)
    assert first.startswith("job 'job0': fire at 1000 ms passed over, 6000 ms late")
    assert summary.startswith("500 fires passed over, up to 6499 ms late")
    assert "the last: job 'last' at 2000 ms" in summary
