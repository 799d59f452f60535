"""The spill directory full while the store is down (issue 11, item 5): the LogSink
keeps every record, says so once (``SpillRoom``), and goes on once there is room or
the store is back. The Locker's side is in tests/worker/locker/test_locker_spill_full.py.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Sequence

import pytest

from cluster.store import RunRecord
from worker.log_sink.spill import SpillFile, SpillIOError
from worker.metrics import WorkerMetrics
from worker.spill_room import SpillRoom

from log_sink_testkit import FakeStore, records, running_sink, sink_config, wait_until


class Disk:
    """The spill file's appends fail with ``error`` while ``full``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, error: int = errno.ENOSPC) -> None:
        self.full = True
        self.attempts = 0
        real_append = SpillFile._append_sync

        def append(spill: SpillFile, recs: Sequence[RunRecord]) -> None:
            self.attempts += 1
            if self.full:
                raise SpillIOError(spill.path, "append", OSError(error, "No space left"))
            real_append(spill, recs)

        monkeypatch.setattr(SpillFile, "_append_sync", append)


def room_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "worker.spill_room"]


async def test_disk_full_while_the_store_is_down_keeps_every_record_and_says_so_once(
        tmp_path, autojump_clock, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    store = FakeStore()
    store.down = True
    disk = Disk(monkeypatch)
    room = SpillRoom()
    cfg = sink_config(tmp_path, sink_memory_records=20, job_log_batch_size=10)
    metrics = WorkerMetrics()
    gauge = b"\nscheduler_worker_spill_full "
    async with running_sink(cfg, opener=store.opener(), room=room) as h:
        metrics.log_sink.track(h.sink)
        assert gauge + b"0.0\n" in metrics.render()
        await h.write_all(records(40))
        await wait_until(lambda: room.full)
        assert room.problems() == ("spill: disk full",)
        assert h.stats().spill_full and gauge + b"1.0\n" in metrics.render()
        # Ten retries with the disk still full (wall time: a spill runs in a thread,
        # during which the autojump clock jumps: a trio sleep would end too soon).
        await wait_until(lambda: disk.attempts >= 10)
        # Kept, not dropped: in memory or still in the mailbox, none in a file.
        assert h.stats().queued + h.address.statistics().depth == 40
        assert h.stats().spilled == 0 and not store.rows
        assert len(room_lines(caplog)) == 1  # one line per change, not one per retry
        assert "spill: disk full" in room_lines(caplog)[0]
        assert room.times_full == 1

        disk.full = False  # space returns: the next retry spills, within the backoff cap
        await wait_until(lambda: not room.full)
        assert not h.stats().spill_full and room.problems() == ()
        assert gauge + b"0.0\n" in metrics.render()
        assert "no longer full" in room_lines(caplog)[1] and len(room_lines(caplog)) == 2
        await h.flush()
        assert h.stats().queued == 0 and h.stats().spilled == 40

        store.down = False  # the store returns: the spill is replayed, nothing lost
        await wait_until(lambda: len(store.rows) == 40)
    assert sorted(store.rows) == [r.run_id for r in records(40)]


async def test_the_store_back_ends_the_state_while_the_disk_is_still_full(
        tmp_path, autojump_clock, monkeypatch, caplog):
    store = FakeStore()
    store.down = True
    Disk(monkeypatch)
    room = SpillRoom()
    cfg = sink_config(tmp_path, sink_memory_records=20, job_log_batch_size=10)
    async with running_sink(cfg, opener=store.opener(), room=room) as h:
        await h.write_all(records(30))
        await wait_until(lambda: room.full)
        store.down = False
        await wait_until(lambda: len(store.rows) == 30)
        await wait_until(lambda: not room.full)
        assert "run store took" in room_lines(caplog)[-1]
    assert sorted(store.rows) == [r.run_id for r in records(30)]


async def test_another_spill_error_is_named_in_the_state(tmp_path, autojump_clock, monkeypatch):
    store = FakeStore()
    store.down = True
    Disk(monkeypatch, errno.EIO)
    room = SpillRoom()
    cfg = sink_config(tmp_path, sink_memory_records=20, job_log_batch_size=10)
    async with running_sink(cfg, opener=store.opener(), room=room) as h:
        await h.write_all(records(25))
        await wait_until(lambda: room.full)
        (line,) = room.problems()
        assert line.startswith("spill: ") and "append failed" in line and "disk full" not in line
        store.down = False
        await wait_until(lambda: len(store.rows) == 25)
