"""The deliverer: claims due outbox rows, resolves and sends them, records the outcome.

Any number run at once (every worker, the master): each claims rows with a lease
(``LEASE_S``, longer than any send may take), so two deliverers never send one row
at once, and a dead one's rows are due again once its lease passes. A row is marked
``sent`` only after the receiver answered 2xx: a deliverer that dies in between, or
whose answer is lost, leaves the row to be sent again, which is why receivers dedupe
by event id (at least once; in normal operation once).

Retries wait ``exponential_s(backoff_initial_s, cap, attempts)`` (5 s doubling to the
settings' ``backoffMaxS``, 15 min by default) and stop after 24 h (``expired``,
``cluster.store.MAX_DELIVERY_AGE_MS``). Sends run concurrently, at most
``SEND_LIMIT`` at once, each bounded by its sender's timeout; nothing here shares a
task or a lock with scheduling.

Order: the rows of one job and channel go one at a time, in event time; the store
hands out only the first pending one of each (``AlertOutbox.claim_due``), and the
next is claimed once it is settled (the deliverer looks again at once). A row that
failed waits for its retry and the later ones of its job and channel wait behind it.
Different jobs and channels go concurrently: ``run`` does not wait for a round's
sends before it claims again, so a receiver that hangs holds up only its own rows
(its sends stay in flight, at most ``CLAIM_LIMIT`` rows are claimed at once).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import trio

from cluster.backoff import exponential_s
from cluster.etcd import EtcdError
from cluster.store import AlertOutbox, Delivery, StoreError

from ._senders import DeliveryFailed, Senders
from ._source import AlertSource, channels_wanted

__all__ = ["Deliverer", "DeliveryStatistics"]

log = logging.getLogger(__name__)

LEASE_S: Final = 60.0
POLL_S: Final = 1.0
SEND_LIMIT: Final = 8
CLAIM_LIMIT: Final = 4 * SEND_LIMIT  # rows claimed and not yet settled, at most
BACKOFF_INITIAL_S: Final = 5.0
PENDING_EVERY_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class DeliveryStatistics:
    """Per channel: sent, failed attempts, rows pending (as last counted)."""

    sent: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)
    expired: int = 0


class Deliverer:
    """One process's deliverer over ``outbox`` (module doc). ``owner`` names it in leases."""

    def __init__(self, source: AlertSource, senders: Senders, owner: str, *,
                 poll_s: float = POLL_S, backoff_initial_s: float = BACKOFF_INITIAL_S,
                 wall: Callable[[], float] = time.time):
        self._source = source
        self._senders = senders
        self._owner = owner
        self._poll_s = poll_s
        self._backoff_initial_s = backoff_initial_s
        self._wall = wall
        self._slots = trio.CapacityLimiter(SEND_LIMIT)
        self._sent: Counter[str] = Counter()
        self._failed: Counter[str] = Counter()
        self._pending: dict[str, int] = {}
        self._pending_at = -PENDING_EVERY_S
        self._expired = 0
        self._in_flight = 0  # claimed rows not yet settled
        self._wake = trio.Event()

    def statistics(self) -> DeliveryStatistics:
        return DeliveryStatistics(dict(self._sent), dict(self._failed), dict(self._pending),
                                  self._expired)

    def wake(self) -> None:
        """Look for due rows now (a test event was just queued)."""
        self._wake.set()

    async def run(self, outbox: AlertOutbox) -> None:
        """Deliver forever; a store or etcd failure only delays the next round. Sends
        outlive their round (module doc: a hanging one holds up no other job)."""
        async with trio.open_nursery() as sends:
            while True:
                try:
                    await self._round(outbox, sends)
                except (StoreError, EtcdError) as exc:
                    log.debug("alert delivery round failed: %s", exc)
                    outbox.forget_schema()  # the server may come back empty: check tables
                with trio.move_on_after(self._poll_s):
                    await self._wake.wait()
                self._wake = trio.Event()

    def _now_ms(self) -> int:
        return int(self._wall() * 1000)

    async def round(self, outbox: AlertOutbox) -> int:
        """Claim what is due and handle it, sends included; returns how many rows
        were claimed."""
        async with trio.open_nursery() as sends:
            return await self._round(outbox, sends)

    async def _round(self, outbox: AlertOutbox, sends: trio.Nursery) -> int:
        """Claim what is due and start handling it in ``sends``."""
        await self._source.settings()  # keeps repeat_s fresh for the writers of records
        room = CLAIM_LIMIT - self._in_flight
        claimed = [] if room <= 0 else await outbox.claim_due(
            self._owner, self._now_ms(), int(LEASE_S * 1000), limit=room)
        for delivery in claimed:
            self._in_flight += 1
            sends.start_soon(self._settle, outbox, delivery)
        if trio.current_time() - self._pending_at >= PENDING_EVERY_S or claimed:
            counts = await outbox.counts()
            self._pending = {ch: n for (ch, state), n in counts.items()
                             if state == "pending" and ch}
            self._pending_at = trio.current_time()
        return len(claimed)

    async def _settle(self, outbox: AlertOutbox, delivery: Delivery) -> None:
        try:
            if await self._one(outbox, delivery):
                self.wake()  # the next row of its job and channel may go now
        finally:
            self._in_flight -= 1

    async def _one(self, outbox: AlertOutbox, delivery: Delivery) -> bool:
        """Resolve, send or drop one row; True if it is settled (no longer pending)."""
        try:
            if not delivery.channel:
                await outbox.resolve(delivery, await channels_wanted(self._source, delivery.event),
                                     self._now_ms())
                return True  # its per-channel rows are due now
            channel = (await self._source.channels()).get(delivery.channel)
            if channel is None:
                await outbox.mark_dropped(delivery, self._now_ms(), "channel deleted")
                return True
            settings = await self._source.settings()
            async with self._slots:
                try:
                    await self._senders.send(channel, delivery.event, settings.public_url)
                except DeliveryFailed as exc:
                    return not await self._failed_once(outbox, delivery, str(exc))
            await outbox.mark_sent(delivery, self._now_ms())
            self._sent[delivery.channel] += 1
            return True
        except (StoreError, EtcdError) as exc:  # the lease runs out; someone retries
            log.debug("alert %s not settled: %s", delivery.delivery_id, exc)
            return False

    async def _failed_once(self, outbox: AlertOutbox, delivery: Delivery, reason: str) -> bool:
        """Count the failed attempt; True if the row is due again (else expired)."""
        self._failed[delivery.channel] += 1
        cap_s = (await self._source.settings()).backoff_max_s
        delay_s = exponential_s(self._backoff_initial_s, cap_s, delivery.attempts)
        alive = await outbox.mark_failed(delivery, self._now_ms(), int(delay_s * 1000), reason)
        if alive:
            log.warning("alert %s to channel %r failed (%s); retry in %.0f s",
                        delivery.event.event_id, delivery.channel, reason, delay_s)
        else:
            self._expired += 1
            log.error("alert %s to channel %r given up after 24 h (%s)",
                      delivery.event.event_id, delivery.channel, reason)
        return alive
