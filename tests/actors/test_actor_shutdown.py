"""run_until_signalled: a real signal to our own process stops the tree gracefully;
unless_signalled: it ends a start-up wait cleanly."""

from __future__ import annotations

import os
import signal

import trio
from trio.testing import MockClock, wait_all_tasks_blocked

from actor_testkit import Add, Probe, ProbeMsg, Scripted
from actors import (Address, ChildSpec, ShutdownReport, Supervisor, open_mailbox,
                    run_until_signalled, unless_signalled)


def tree(log: list[str], *, drain_s: float = 0.0) -> tuple[Supervisor, Address[ProbeMsg]]:
    """A supervisor over probes a (started first) and b, with a generous grace."""
    address_a, inbox_a = open_mailbox[ProbeMsg](4, name="a")
    _, inbox_b = open_mailbox[ProbeMsg](4, name="b")
    supervisor = Supervisor(
        [
            ChildSpec("a", lambda: Probe(inbox_a, log)),
            ChildSpec("b", lambda: Probe(inbox_b, log, drain_s=drain_s)),
        ],
        grace_s=1000,
    )
    return supervisor, address_a


async def send_signals(*signums: int) -> None:
    for signum in signums:
        await wait_all_tasks_blocked()
        os.kill(os.getpid(), signum)


async def test_sigterm_drains_the_tree_in_reverse_order_and_returns(
    autojump_clock: MockClock,
) -> None:
    log: list[str] = []
    supervisor, _ = tree(log)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_signals, signal.SIGTERM)
        report = await run_until_signalled(supervisor, grace_s=10)
    assert report == ShutdownReport(signal=signal.SIGTERM, forced=False)
    assert [line for line in log if line.startswith("drained")] == ["drained b", "drained a"]


async def test_work_queued_before_the_signal_is_finished_before_exit(
    autojump_clock: MockClock,
) -> None:
    log: list[str] = []
    supervisor, address_a = tree(log)
    async with trio.open_nursery() as nursery:

        async def queue_then_signal() -> None:
            await wait_all_tasks_blocked()
            address_a.send_nowait(Add(2))
            os.kill(os.getpid(), signal.SIGTERM)

        nursery.start_soon(queue_then_signal)
        await run_until_signalled(supervisor, grace_s=10)
    assert "draining a total=2" in log


async def test_a_drain_longer_than_the_overall_grace_is_cut_short(
    autojump_clock: MockClock,
) -> None:
    log: list[str] = []
    supervisor, _ = tree(log, drain_s=100)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_signals, signal.SIGTERM)
        report = await run_until_signalled(supervisor, grace_s=5)
    assert report == ShutdownReport(signal=signal.SIGTERM, forced=True)
    assert trio.current_time() == 5
    assert "drained b" not in log and "end a" in log


async def test_a_second_signal_cancels_at_once() -> None:
    log: list[str] = []
    supervisor, _ = tree(log, drain_s=1000)  # real clock: only the 2nd signal can end it
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_signals, signal.SIGTERM, signal.SIGINT)
            report = await run_until_signalled(supervisor, grace_s=1000)
    assert report == ShutdownReport(signal=signal.SIGTERM, forced=True)
    assert "draining b total=0" in log and "drained b" not in log


async def test_a_root_that_returns_by_itself_reports_no_signal() -> None:
    log: list[str] = []
    report = await run_until_signalled(Scripted("once", log, outcome="return"))
    assert report == ShutdownReport(signal=None, forced=False)


async def test_a_start_up_wait_ends_cleanly_on_sigterm() -> None:
    """What a worker waiting for etcd at start does on SIGTERM: the wait is cancelled
    and the signal handed back, nothing raised, the process not killed."""
    waited = trio.Event()

    async def wait_forever() -> str:
        waited.set()
        await trio.sleep_forever()
        return "never"

    async def signal_once_waiting() -> None:
        await waited.wait()
        os.kill(os.getpid(), signal.SIGTERM)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(signal_once_waiting)
        with trio.fail_after(5):
            value, signum = await unless_signalled(wait_forever)
    assert (value, signum) == (None, signal.SIGTERM)


async def test_a_start_up_wait_that_ends_returns_its_value() -> None:
    async def answer() -> int:
        await trio.sleep(0)
        return 42

    with trio.fail_after(5):
        assert await unless_signalled(answer) == (42, None)
