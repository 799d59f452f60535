"""What the Locker reports (``Locker.statistics_detail``): read by ``worker.metrics`` at
scrape time (``claims_total`` by result, ``claim_retries_total``, the gauges)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LockerStatistics"]


@dataclass(frozen=True, slots=True)
class LockerStatistics:
    won: int
    taken: int  # another worker had it
    skipped: int  # we recorded it skipped (job busy, no capacity anywhere)
    skipped_running: int  # of which: its job still ran (forbid; replace that would not die)
    skipped_no_capacity: int  # of which: no eligible worker had room
    unschedulable: int  # not run: no live worker matches its selector (nothing recorded)
    failed: int  # etcd did not answer before the fire's grace ran out
    spill_full: int  # not claimed (nor recorded skipped): the spill directory is full
    retries: int  # claim attempts made again: etcd did not answer, or its answer was lost
    in_flight: int  # fires taken and not yet decided, lost runs and retries being written
    clock_offset_ms: int  # our clock minus the fleet's median (0 while unknown)
    out_of_step: bool  # further than max_clock_skew_s from it: claims only as a last resort
    no_quorum: int  # fires not claimed because etcd had no quorum (caught up after)
    not_served: int  # shards: fires of jobs other workers serve now (they claim them)
    quorum_lost: bool  # etcd answers without a leader now: nothing is claimed
