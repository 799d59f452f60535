"""Which workers' clocks are off, judged against the fleet's median clock.

Why: fire times are wall-clock instants and each worker reads its own clock, so a worker
whose clock is 3 s ahead reaches every fire 3 s early, claims it first and starts it 3 s
early (measured: ``tests/e2e/test_e2e_skewed_clocks.py``); one 3 s behind would start it
3 s late. etcd gives no time, so the reference is the fleet itself: every worker
republishes its wall clock every ``session_ttl_s / 3`` (``WorkerInfo.wall_ms``), and a
worker that sees such a publication as it happens (a watch event, a few ms old) learns
that worker's offset from its own clock. The median of the offsets (its own is 0) is the
fleet's time; a worker further than ``max_clock_skew_s`` from it is *out of step*.
Every worker computes the same set, up to the few ms of watch delivery.

What the Locker does with it (``actor._delay_for``): out-of-step workers are left out of
the ranking, so an in-step worker is first for every fire and claims it on time; an
out-of-step worker claims only after every in-step eligible worker had its turn, and one
that is ahead first waits out its lead, so it never starts a fire early. The claim's
lock still decides who runs a fire: a disagreement about who is out of step costs a
few steps of lateness, never a double or a miss.

With fewer than three known clocks there is no majority (two workers 3 s apart are
both 1.5 s from their median): nobody is out of step, and the ahead one claims first, as
without this module. The master's warning (``master.clock_watch``) still names the
worker that is off from the master's clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from statistics import median


def deviations(offsets_ms: Mapping[str, int]) -> dict[str, int]:
    """Each worker's distance from the median of ``offsets_ms`` (positive: ahead);
    empty with fewer than three clocks (no majority)."""
    if len(offsets_ms) < 3:
        return {}
    middle = median(offsets_ms.values())
    return {worker_id: round(offset - middle) for worker_id, offset in offsets_ms.items()}


def out_of_step(offsets_ms: Mapping[str, int], limit_ms: float) -> dict[str, int]:
    """The workers further than ``limit_ms`` from the median, with their distance."""
    return {w: d for w, d in deviations(offsets_ms).items() if abs(d) > limit_ms}
