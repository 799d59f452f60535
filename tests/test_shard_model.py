"""The shard model of ``python -m benchmarks.scale --model`` (issue 14) counts from the
real slot tables: every job is planned by exactly min(R, W) workers, a join moves the
slots the newcomer takes, and the per-fire counts are W today and R with slots (watch
events, and claim transactions: a backup's losing claim is a write, not a read)."""

from __future__ import annotations

import pytest

pytest.importorskip("psutil", reason="the bench extra (benchmarks._machine)")

from benchmarks import _shard_model, scale  # noqa: E402
from cluster.slots import SlotTable  # noqa: E402


def test_each_job_is_planned_by_r_workers_and_the_counts_follow_w_and_r() -> None:
    jobs = 5_000
    models = _shard_model.run([2, 3, 8], slots=64, replicas=2, job_counts=(jobs,))
    for m in models:
        low, mean, high = m.jobs[jobs]
        assert mean * m.workers == pytest.approx(min(2, m.workers) * jobs)
        assert low <= mean <= high
        assert (m.events_per_fire(False), m.events_per_fire(True)) == (m.workers, 2)
        assert (m.backup_claims_per_fire(False), m.backup_claims_per_fire(True)) == \
            (m.workers - 1, 1)
        # the claim, W - 1 (today) or R - 1 (slots) losing claims, a mark, a release
        assert (m.writes_per_fire(False), m.writes_per_fire(True)) == (m.workers + 2, 4)
        fleet = [f"worker-{i:03d}" for i in range(m.workers)]
        table = SlotTable.build(fleet, 2, slots=64)
        joined = SlotTable.build([*fleet, f"worker-{m.workers:03d}"], 2, slots=64)
        assert m.moved_join == len(joined.slots_of(f"worker-{m.workers:03d}")) > 0
        assert m.moved_leave == len(table.slots_of("worker-000"))
    two = models[0]
    assert two.slots_owned == (64, 64.0, 64) and two.jobs[jobs] == (jobs, jobs, jobs)


def test_the_model_mode_starts_nothing_and_writes_its_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(scale, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(_shard_model, "JOB_COUNTS", (100_000, 1_000_000))
    monkeypatch.setattr(_shard_model, "jobs_per_slot",
                        lambda n, slots: [n // slots] * slots)  # no million hashes here
    assert scale.main(["--model", "--fleets", "2,8", "--slots", "64"]) == 0
    out = capsys.readouterr().out
    assert "S = 64 slots, R = 2" in out and "| 8 | " in out
    assert "8 → 2" in (tmp_path / "scale-model-s64.md").read_text()
