"""tell and offer: sends that answer "not delivered" instead of raising."""

from __future__ import annotations

import trio
from trio.testing import wait_all_tasks_blocked

from actors import open_mailbox


async def test_tell_delivers_and_answers_true() -> None:
    address, inbox = open_mailbox[int](1, name="box")
    assert await address.tell(1) is True
    assert await inbox.receive() == 1


async def test_tell_to_a_sealed_mailbox_answers_false_and_queues_nothing() -> None:
    address, inbox = open_mailbox[int](1, name="box")
    inbox.seal()
    assert await address.tell(1) is False
    assert address.statistics().depth == 0


async def test_tell_waits_while_full_and_answers_false_when_sealed_during_the_wait() -> None:
    address, inbox = open_mailbox[int](1, name="box")
    address.send_nowait(1)
    answers: list[bool] = []

    async def teller() -> None:
        answers.append(await address.tell(2))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(teller)
        await wait_all_tasks_blocked()
        assert answers == []  # backpressure: it waits for room, as send does
        assert address.statistics().senders_waiting == 1
        inbox.seal()
    assert answers == [False]
    assert await inbox.receive() == 1  # what was queued before the seal still arrives


async def test_tell_waits_for_room_then_delivers() -> None:
    address, inbox = open_mailbox[int](1, name="box")
    address.send_nowait(1)
    answers: list[bool] = []

    async def teller() -> None:
        answers.append(await address.tell(2))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(teller)
        await wait_all_tasks_blocked()
        assert await inbox.receive() == 1
    assert answers == [True]
    assert await inbox.receive() == 2


async def test_offer_queues_when_there_is_room() -> None:
    address, inbox = open_mailbox[int](1, name="box")
    assert address.offer(7) is True
    assert await inbox.receive() == 7


async def test_offer_into_a_full_mailbox_answers_false_at_once() -> None:
    address, inbox = open_mailbox[int](1, name="box")
    assert address.offer(1) is True
    assert address.offer(2) is False
    assert address.statistics().depth == 1
    assert await inbox.receive() == 1


async def test_offer_into_a_closed_mailbox_answers_false() -> None:
    address, inbox = open_mailbox[int](1, name="box")
    inbox.close()
    assert address.offer(1) is False
