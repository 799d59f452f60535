"""Mailboxes: bounded, typed, fan-in safe, with precise closing semantics."""

from __future__ import annotations

import math

import pytest
import trio
from trio.testing import wait_all_tasks_blocked

from actors import MailboxClosed, MailboxFull, open_mailbox


async def test_send_nowait_into_a_full_mailbox_raises_mailbox_full() -> None:
    address, _inbox = open_mailbox[int](2, name="box")
    address.send_nowait(1)
    address.send_nowait(2)
    with pytest.raises(MailboxFull, match="'box' is full") as caught:
        address.send_nowait(3)
    assert isinstance(caught.value, trio.WouldBlock)
    stats = address.statistics()
    assert (stats.depth, stats.capacity, stats.senders_waiting) == (2, 2, 0)


async def test_send_waits_while_full_until_the_receiver_consumes() -> None:
    address, inbox = open_mailbox[int](1, name="box")
    address.send_nowait(1)
    delivered = trio.Event()

    async def sender() -> None:
        await address.send(2)
        delivered.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        await wait_all_tasks_blocked()
        assert not delivered.is_set()
        assert address.statistics().senders_waiting == 1
        assert await inbox.receive() == 1
        await delivered.wait()
    assert await inbox.receive() == 2
    assert inbox.statistics().received_total == 2


async def test_many_senders_through_one_address_all_arrive_in_per_sender_order() -> None:
    address, inbox = open_mailbox[tuple[int, int]](1, name="fan-in")
    senders, per_sender = 5, 20

    async def sender(who: int) -> None:
        for i in range(per_sender):
            await address.send((who, i))

    received: list[tuple[int, int]] = []
    async with trio.open_nursery() as nursery:
        for who in range(senders):
            nursery.start_soon(sender, who)
        for _ in range(senders * per_sender):
            received.append(await inbox.receive())
    for who in range(senders):
        assert [i for w, i in received if w == who] == list(range(per_sender))


async def test_seal_rejects_new_messages_but_delivers_queued_ones_then_ends() -> None:
    address, inbox = open_mailbox[str](4, name="box")
    address.send_nowait("a")
    address.send_nowait("b")
    inbox.seal()
    with pytest.raises(MailboxClosed, match="'box' is closed") as caught:
        await address.send("c")
    assert isinstance(caught.value, trio.BrokenResourceError)
    with pytest.raises(MailboxClosed):
        address.send_nowait("c")
    assert [msg async for msg in inbox] == ["a", "b"]
    with pytest.raises(trio.EndOfChannel):
        await inbox.receive()
    assert inbox.statistics().sealed


async def test_seal_wakes_a_waiting_sender_with_mailbox_closed() -> None:
    address, inbox = open_mailbox[int](0, name="box")
    outcome: list[BaseException] = []

    async def sender() -> None:
        try:
            await address.send(1)
        except MailboxClosed as exc:
            outcome.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        await wait_all_tasks_blocked()
        inbox.seal()
    assert len(outcome) == 1


async def test_close_discards_queued_messages_counts_them_and_is_final() -> None:
    address, inbox = open_mailbox[int](4, name="box")
    for i in range(3):
        address.send_nowait(i)
    inbox.close()
    inbox.close()  # idempotent: counted once
    assert inbox.statistics().discarded == 3
    with pytest.raises(trio.ClosedResourceError):
        await inbox.receive()
    with pytest.raises(MailboxClosed):
        await address.send(9)


@pytest.mark.parametrize("capacity", [-1, math.inf, 1.5])
async def test_an_unbounded_or_negative_capacity_is_refused(capacity: float) -> None:
    with pytest.raises(ValueError, match="capacity"):
        open_mailbox[int](capacity, name="box")  # type: ignore[arg-type]
