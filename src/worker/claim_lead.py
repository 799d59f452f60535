"""How far ahead of its time a scheduled fire is handed over: the adaptive claim lead.

A fire of a job with concurrency ``allow`` is handed to the Locker ``claim_lead_s``
before its time (``scheduler.plan``), so that its claim (an etcd transaction) and its
start mark (another, ``executor.start_marks``) are settled when the time comes and the
command starts at the planned instant. That holds only while both fit in the lead:
with etcd 200 ms slower on every request, a 200 ms lead covers neither, and fires
started two to three delays late instead of on time (DESIGN §12, "slow etcd"). So the
lead follows what they take:

- the **Locker** tells (``claimed``) which claims it won as the fire's first choice,
  of scheduled ``allow`` fires (the fires the lead serves): a backup's claim waited
  for its rank on purpose, and a claim another worker won or one that gave up (etcd
  down, no quorum: nothing a lead helps) is not counted;
- the **Executor** notes (``ready``) when such a run's mark landed, from the
  Scheduler's hand-over (``Fire.fired_ms``: the outbox, the mailboxes, the claim, the
  spawn of the held process and the mark all count), or from its due time (its
  time less the lead last given) if it was handed over before it: a window hands
  fires over with the one due (``scheduler.plan``), up to a second ahead when it is
  thin, and such a fire has that much more time than the lead; what it took before
  its due time came out of that slack, so it never makes the lead grow;
- the **Locker** also tells (``round_trip``) how long each of its claim and check
  transactions took, for every fire in it, first choice or backup: a worker that won
  no first choice since etcd turned slow learns it from its backups' checks, before
  its own next fires (one such worker, with the p95 below blind to its first slow
  claims, started three fires 624 ms late with etcd 200 ms slower);
- the **Scheduler** reads ``lead_ms`` before it plans its next wake-up: the configured
  ``claim_lead_s``, or the recent near-worst (p95 over the last ``WINDOW_S``, at most
  ``MAX_SAMPLES``) of the fires' hand-over to mark, and of two round trips (a fire
  needs its claim and its mark), plus ``MARGIN_MS`` (the word to the held process
  and its exec) if more, rounded up to ``STEP_MS`` (the plan re-keys its heap on each
  change, so it changes seldom), and never above ``MAX_LEAD_S``: a longer lead
  stretches the window in which a kill or a pause meets a fire already claimed,
  and a claim slower than a second has a problem a lead does not solve;
- **decay**: samples older than ``WINDOW_S`` are forgotten, so the lead is back to the
  configured one ``WINDOW_S`` after etcd is fast again (or no fire came);
- **capacity**: a claimed fire's process is held from its claim to its time and counts
  in ``capacity``, so a worker winning ``r`` first-choice fires a second holds about
  ``r * lead`` ahead. The lead never holds more than ``HELD_SHARE`` of the capacity
  ahead: at most ``capacity * HELD_SHARE / r`` (``r`` over the last ``RATE_WINDOW_S``),
  rounded down to ``STEP_MS``, never below ``MIN_LEAD_MS``; below the configured lead
  too. Why (issue 14): a worker whose own CPU is the limit hands its fires over later
  than a lead allows, the lead grew to its cap (1 s), and 250 fires a second each held
  a second filled a capacity of 64 four times over: at 500 fires/s over 2 workers, 763
  of 10,000 fires were skipped for want of capacity and the rest started up to 1.2 s
  late. A longer lead buys time for a slow etcd, not throughput.

``claim_lead_s`` 0 (claim at the fire time) stays 0: no lead, nothing adapts.
``forbid``/``replace`` fires have no lead (they are judged at their time) and are not
measured. One log line (INFO) when the lead leaves the configured one, one when it is back.

Cheap when fast (the usual case): the Scheduler asks ``lead_ms`` at every wake-up
after a claim, and sorting the window each time cost ~0.26 ms per fire (issue 14,
perf-baseline-14 item 5). Each window (``_Window``) also counts its samples above the
*fast bound*, the largest near-worst that still gives the configured lead; while too few
are above it for the p95 to be, the lead is the configured one without a sort (the very
answer the sort gives). Only while claims are slow is the window sorted, as before.

Why a shared object and not a message (as ``worker.spill_room``): the Scheduler reads
it at every wake-up for nothing, and it outlives a restarted Locker or Scheduler. Made
once per worker tree (``worker.app``), used only in the trio thread.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

from cluster.spec import Concurrency
from cluster.store import RunTrigger

from worker.clock import WallClock
from worker.messages import Fire

T = TypeVar("T")  # what a batch holds (the Locker's pending claims)

__all__ = ["ClaimLead", "MAX_LEAD_S"]

log = logging.getLogger(__name__)

WINDOW_S = 10.0  # claims this recent count; older ones are forgotten (the decay)
MAX_SAMPLES = 256  # at most this many of them (a busy worker's last ones)
MAX_PENDING = 4096  # first-choice runs claimed and not yet marked (a burst's worth)
QUANTILE = 0.95
MARGIN_MS = 100  # after the mark: the word to the held process, and its exec
STEP_MS = 50
MAX_LEAD_S = 1.0
HELD_SHARE = 0.5  # of ``capacity``: the most the lead may hold ahead (module doc)
RATE_WINDOW_S = 2.0  # first-choice claims this recent give the rate the cap follows
MIN_LEAD_MS = 50  # the cap's floor: a claim and a mark in a full batch fit in it


class ClaimLead:
    """The claim lead, following recent claim round trips (module doc)."""

    def __init__(self, clock: WallClock, configured_s: float, capacity: int = 0) -> None:
        """``capacity``: the worker's (0: no cap from it)."""
        self._clock = clock
        self._configured_ms = round(configured_s * 1000)
        self._held_max = capacity * HELD_SHARE
        self._claims_at: deque[int] = deque()  # first-choice claims (ms), RATE_WINDOW_S
        fast_ms = _fast_bound(self._configured_ms)
        self._samples = _Window(fast_ms)  # hand-over to mark
        self._trips = _Window(fast_ms // 2)  # round trips: a fire needs two (claim, mark)
        self._first_choice: set[str] = set()  # run ids claimed first-choice, not yet marked
        self._said_ms = self._configured_ms  # the lead last logged
        self._lead_ms: int | None = self._configured_ms  # None: to be worked out again
        self._given_ms = self._configured_ms  # the lead ``lead_ms`` last answered

    def claimed(self, fire: Fire) -> None:
        """The Locker won a first-choice claim of ``fire`` just now: remembered if the
        lead serves it (scheduled, ``allow``), so that its ``ready`` counts."""
        if (fire.trigger is RunTrigger.SCHEDULE and not fire.recovers
                and fire.spec.concurrency is Concurrency.ALLOW and self._configured_ms > 0):
            if len(self._first_choice) >= MAX_PENDING:  # runs killed before their mark
                self._first_choice.clear()
            self._first_choice.add(fire.run_id)
            if self._held_max:
                self._claims_at.append(self._clock.now_ms())

    def ready(self, fire: Fire) -> None:
        """The Executor's mark of ``fire`` landed just now (its command may start): noted
        from its hand-over, or from its due time if it was handed over before (a
        window's, module doc), if its claim was a first choice (``claimed``)."""
        if fire.run_id in self._first_choice:
            self._first_choice.discard(fire.run_id)
            since_ms = max(fire.fired_ms, fire.planned_ms - self._given_ms)
            self.observed(self._clock.now_ms() - since_ms)

    def observed(self, took_ms: int) -> None:
        """A fire was ready to start ``took_ms`` after it was handed over."""
        if self._configured_ms > 0:
            self._samples.add(self._clock.now_ms(), max(0, took_ms), 1)
            self._lead_ms = None

    def round_trip(self, took_ms: int, fires: int) -> None:
        """A claim or check transaction for ``fires`` fires took ``took_ms``: one sample
        per fire, so that a batch weighs what the fires behind it do. One slower than
        the cap is etcd failing, not slow (the claims' retries handle it): not counted."""
        if self._configured_ms > 0 and 0 <= took_ms <= MAX_LEAD_S * 1000:
            self._trips.add(self._clock.now_ms(), took_ms, min(fires, MAX_SAMPLES))
            self._lead_ms = None

    def timed(self, send: Callable[[list[T]], Awaitable[None]],
              ) -> Callable[[list[T]], Awaitable[None]]:
        """``send`` (a batch of claims or checks), its round trip told to ``round_trip``."""
        async def timed(batch: list[T]) -> None:
            sent_ms = self._clock.now_ms()
            await send(batch)
            self.round_trip(self._clock.now_ms() - sent_ms, len(batch))
        return timed

    def lead_ms(self) -> int:
        """The lead to use now: never below the configured one (but for the capacity
        cap), never above ``MAX_LEAD_S``.
        Asked at each of the Scheduler's wake-ups: worked out again only when a claim
        came or one aged out."""
        lead = self._lead_ms_now()
        cap = self._held_cap_ms()
        self._given_ms = lead if cap is None else min(lead, cap)
        return self._given_ms

    def _held_cap_ms(self) -> int | None:
        """The longest lead that holds at most ``HELD_SHARE`` of the capacity ahead at
        the recent rate of first-choice claims (module doc, "capacity"); None: no
        claims lately, or no capacity given."""
        claims_at = self._claims_at
        oldest_ms = self._clock.now_ms() - round(RATE_WINDOW_S * 1000)
        while claims_at and claims_at[0] < oldest_ms:
            claims_at.popleft()
        if not claims_at:
            return None
        per_s = len(claims_at) / RATE_WINDOW_S
        return max(MIN_LEAD_MS, int(self._held_max / per_s * 1000) // STEP_MS * STEP_MS)

    def _lead_ms_now(self) -> int:
        self._forget_old()
        if self._lead_ms is not None:
            return self._lead_ms
        lead = self._configured_ms
        if (self._samples or self._trips) and lead > 0:
            if self._samples.fast() and self._trips.fast():  # p95s within the fast bounds
                self._say(lead, None)
                self._lead_ms = lead
                return lead
            near_worst = max(self._samples.near_worst(), 2 * self._trips.near_worst())
            wanted = math.ceil((near_worst + MARGIN_MS) / STEP_MS) * STEP_MS
            lead = max(lead, min(wanted, round(MAX_LEAD_S * 1000)))
            self._say(lead, near_worst)
        else:
            self._say(lead, None)
        self._lead_ms = lead
        return lead

    def _forget_old(self) -> None:
        oldest_ms = self._clock.now_ms() - round(WINDOW_S * 1000)
        for samples in (self._samples, self._trips):
            if samples.forget_before(oldest_ms):
                self._lead_ms = None

    def _say(self, lead: int, near_worst: int | None) -> None:
        if lead == self._said_ms:
            return
        if lead == self._configured_ms:
            log.info("claim lead back to %d ms (--claim-lead-s): claims are fast again", lead)
        elif self._said_ms == self._configured_ms:
            log.info("claims are slow (p95 %s ms over the last %g s): fires of 'allow' jobs "
                     "are claimed %d ms ahead, not %d (at most %g s)",
                     near_worst, WINDOW_S, lead, self._configured_ms, MAX_LEAD_S)
        self._said_ms = lead


def _fast_bound(configured_ms: int) -> int:
    """The largest near-worst (ms) for which ``lead_ms`` is the configured lead: its
    ``ceil((near_worst + MARGIN_MS) / STEP_MS) * STEP_MS`` must not pass it. Negative
    when no near-worst is that small (a lead under ``MARGIN_MS``): then every sample
    counts as slow and the window is always sorted."""
    return configured_ms // STEP_MS * STEP_MS - MARGIN_MS


def _quantile_index(n: int) -> int:
    return min(n - 1, math.ceil(QUANTILE * n) - 1)


class _Window:
    """The last ``MAX_SAMPLES`` samples ``(at, took)`` ms, oldest first, with a running
    count of those whose ``took`` is above ``fast_ms`` (kept on every add and drop, so
    that ``fast`` costs nothing)."""

    def __init__(self, fast_ms: int) -> None:
        self._fast_ms = fast_ms
        self._items: deque[tuple[int, int]] = deque(maxlen=MAX_SAMPLES)
        self._slow = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, at_ms: int, took_ms: int, times: int) -> None:
        slow = took_ms > self._fast_ms
        for _ in range(times):
            if len(self._items) == MAX_SAMPLES:  # the deque drops its oldest
                self._slow -= self._items[0][1] > self._fast_ms
            self._items.append((at_ms, took_ms))
            self._slow += slow

    def forget_before(self, oldest_ms: int) -> bool:
        """Drop the samples older than ``oldest_ms``; True if any went."""
        items = self._items
        dropped = False
        while items and items[0][0] < oldest_ms:
            self._slow -= items.popleft()[1] > self._fast_ms
            dropped = True
        return dropped

    def fast(self) -> bool:
        """Is the ``QUANTILE`` of the durations at most ``fast_ms``? True when the
        samples above it all sort after the quantile's index (none: True)."""
        n = len(self._items)
        return n == 0 or self._slow <= n - 1 - _quantile_index(n)

    def near_worst(self) -> int:
        """The ``QUANTILE`` of the samples' durations (0 for none): a sort."""
        if not self._items:
            return 0
        took = sorted(t for _, t in self._items)
        return took[_quantile_index(len(took))]
