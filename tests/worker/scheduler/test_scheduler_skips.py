"""Coalesced skips under a mock clock: a ``forbid`` job on a seconds schedule whose run
goes on for a while keeps ONE skipped record for that run, with the exact count and
the first and last skipped times; the next run that overlaps starts a record of its
own. The Locker is played by the test, with the tally arithmetic of ``worker.skips``
that the real one applies in etcd (tests/worker/locker/test_locker_skips.py)."""

from __future__ import annotations

import trio

from cluster.etcd import KeyValue
from cluster.store import RunStatus
from worker import skips
from worker.locker.messages import Claim
from worker.log_sink.messages import Write
from worker.messages import Fire, Run
from worker.scheduler.messages import Denied, Granted, JobsSnapshot

from test_scheduler import T0, Harness, spec


def kv(value: bytes, revision: int) -> KeyValue:
    return KeyValue("k", value, revision, revision, 1, 0)


class BusyJob:
    """Grants a fire when no run holds the guard, else skips it into the run's tally."""

    def __init__(self, h: Harness, run_ends_ms: list[int]) -> None:
        self.h = h
        self.run_ends_ms = run_ends_ms  # when each run granted, in turn, ends
        self.guard: KeyValue | None = None
        self.tally: KeyValue | None = None
        self.until_ms = 0
        self.revision = 0
        self.runs: list[str] = []

    async def serve(self) -> None:
        async for msg in self.h.inboxes.locker:
            assert isinstance(msg, Claim)
            fire = msg.fire
            if self.guard is not None and self.h.clock.now_ms() >= self.until_ms:
                self.guard = self.tally = None  # the run ended: guard and tally go
            self.revision += 1
            if self.guard is None:
                self.guard = kv(fire.run_id.encode(), self.revision)
                self.until_ms = self.run_ends_ms.pop(0)
                self.runs.append(fire.run_id)
                await self.h.send(Granted(Run(fire, 1, True)))
                continue
            tally = skips.next_tally(self.guard, self.tally, fire)
            self.tally = kv(tally.to_bytes(), self.revision)
            await self.h.send(Denied(fire, "still running (concurrency forbid)",
                                     record_skip=True, tally=tally))


async def test_a_long_run_keeps_one_skipped_record_with_the_exact_count(autojump_clock):
    async with trio.open_nursery() as nursery:
        h = Harness(nursery)
        # Runs granted at T0+1 s (ends at T0+10.5 s: fires T0+2..T0+10 s skipped, 9)
        # and at T0+11 s (ends at T0+13.5 s: fires T0+12, T0+13 s skipped, 2).
        busy = BusyJob(h, [T0 + 10_500, T0 + 13_500, T0 + 99_000])
        nursery.start_soon(busy.serve)
        await h.send(JobsSnapshot((spec("long", "* * * * * *"),), 1, {}))
        await trio.sleep(14.2)  # fires T0+1 s .. T0+14 s
        writes = [m.record for m in h.pending(h.inboxes.log_sink) if isinstance(m, Write)]
        nursery.cancel_scope.cancel()
    first, second = busy.runs[:2]
    assert {w.run_id for w in writes} == {f"{first}.skipped", f"{second}.skipped"}
    assert all(w.status is RunStatus.SKIPPED for w in writes)
    by_run = {w.run_id: w for w in writes}  # the last write of each wins in the store
    one = by_run[f"{first}.skipped"]
    assert (one.skip_count, one.first_skip_time, one.last_skip_time) == (9, T0 + 2000, T0 + 10_000)
    assert one.plan_time == T0 + 2000 and one.start_time is None
    assert f"9 times while run {first} ran" in one.err
    two = by_run[f"{second}.skipped"]
    assert (two.skip_count, two.first_skip_time, two.last_skip_time) == (2, T0 + 12_000, T0 + 13_000)
    # One write per skipped fire, each with the count so far: the store keeps the highest.
    assert [w.skip_count for w in writes] == [*range(1, 10), 1, 2]


def test_a_tally_of_another_run_is_started_again():
    guard = kv(b"run-b", 5)
    old = kv(skips.SkipTally("run-a", 7, 1, 1, 7).to_bytes(), 4)
    f = Fire(spec("j", "* * * * * *"), T0, T0 + 3, "schedule", "x")
    assert skips.next_tally(guard, old, f) == skips.SkipTally("run-b", 1, T0, T0 + 3, T0)
    assert skips.next_tally(guard, kv(b"not json", 4), f).count == 1
    long_id = "r" * 128
    assert len(skips.record_run_id(long_id)) <= 128
