"""call/Reply: typed request-response with caller-owned deadlines."""

from __future__ import annotations

import pytest
import trio

from actor_testkit import Add, Boom, Explode, FailWith, Get, Probe, ProbeMsg, SlowEcho
from actors import (
    AlreadyReplied,
    CallFailed,
    ChildSpec,
    MailboxClosed,
    Reply,
    Supervisor,
    call,
    open_mailbox,
)


async def test_call_returns_the_servers_answer() -> None:
    address, inbox = open_mailbox[ProbeMsg](4, name="counter")
    async with trio.open_nursery() as nursery:
        await nursery.start(Probe(inbox, []).run)
        await address.send(Add(5))
        assert await call(address, Get) == 5
        nursery.cancel_scope.cancel()


async def test_reply_fail_raises_call_failed_naming_the_actor_and_cause() -> None:
    address, inbox = open_mailbox[ProbeMsg](4, name="counter")
    async with trio.open_nursery() as nursery:
        await nursery.start(Probe(inbox, []).run)
        with pytest.raises(CallFailed, match="'counter'") as caught:
            await call(address, lambda reply: FailWith(KeyError("nope"), reply))
        assert caught.value.actor == "counter"
        assert isinstance(caught.value.__cause__, KeyError)
        assert await call(address, Get) == 0  # failing a call is not a crash
        nursery.cancel_scope.cancel()


async def test_a_server_crashing_on_the_request_fails_the_caller_at_once() -> None:
    address, inbox = open_mailbox[ProbeMsg](4, name="bomb")
    supervisor = Supervisor([ChildSpec("bomb", lambda: Probe(inbox, []))])
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        with pytest.raises(CallFailed, match="'bomb'") as caught:
            await call(address, Explode)  # no deadline needed: the crash answers
        assert caught.value.actor == "bomb"
        assert isinstance(caught.value.__cause__, Boom)
        assert await call(address, Get) == 0  # restarted, same address
        supervisor.request_stop()


async def test_a_late_reply_to_a_caller_that_timed_out_does_not_crash_the_server(
    autojump_clock: trio.testing.MockClock,
) -> None:
    address, inbox = open_mailbox[ProbeMsg](4, name="slow")
    async with trio.open_nursery() as nursery:
        await nursery.start(Probe(inbox, []).run)
        with pytest.raises(trio.TooSlowError):
            with trio.fail_after(1):
                await call(address, lambda reply: SlowEcho(5, "late", reply))
        # The server answers the gone caller at t=5, then keeps serving.
        with trio.fail_after(10):
            assert await call(address, lambda reply: SlowEcho(0, "next", reply)) == "next"
        assert trio.current_time() >= 5
        nursery.cancel_scope.cancel()


async def test_answering_twice_is_refused() -> None:
    reply: Reply[int] = Reply("server")
    reply.send(1)
    with pytest.raises(AlreadyReplied, match="'server'"):
        reply.send(2)


async def test_calling_a_stopped_actor_raises_mailbox_closed() -> None:
    address, inbox = open_mailbox[ProbeMsg](4, name="gone")
    inbox.seal()
    with pytest.raises(MailboxClosed):
        await call(address, Get)
