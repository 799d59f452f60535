"""Supervisors: restart policies, intensity, strategies, ordered start and stop, trees."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock, wait_all_tasks_blocked

from actor_testkit import Add, Boom, Crash, Get, Probe, ProbeMsg, Quit, Scripted, count
from actors import (
    Address,
    ChildSpec,
    Inbox,
    Restart,
    RestartIntensityExceeded,
    Strategy,
    Supervisor,
    call,
    open_mailbox,
)


def probe_spec(
    name: str,
    log: list[str],
    *,
    restart: Restart = Restart.PERMANENT,
    drain_s: float = 0.0,
    grace_s: float | None = None,
) -> tuple[ChildSpec, Address[ProbeMsg], Inbox[ProbeMsg]]:
    address, inbox = open_mailbox[ProbeMsg](8, name=name)
    spec = ChildSpec(name, lambda: Probe(inbox, log, drain_s), restart, grace_s)
    return spec, address, inbox


async def test_a_crashed_child_restarts_fresh_on_the_same_address_and_keeps_its_queue() -> None:
    log: list[str] = []
    address, inbox = open_mailbox[ProbeMsg](8, name="counter")
    built: list[Probe] = []

    def make() -> Probe:
        built.append(Probe(inbox, log))
        return built[-1]

    supervisor = Supervisor([ChildSpec("counter", make)])
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        for msg in (Add(2), Crash(), Add(3)):  # queued before the actor runs
            address.send_nowait(msg)
        assert await call(address, Get) == 3  # state reset; Add(3) survived the crash
        assert len(built) == 2
        stats = built[-1].statistics()
        assert (stats.restarts, stats.messages_handled) == (1, 4)
        assert supervisor.statistics().children[0].restarts == 1
        supervisor.request_stop()
    assert log == ["start counter", "end counter", "start counter",
                   "draining counter total=3", "drained counter", "end counter"]


async def test_past_the_intensity_limit_the_supervisor_escalates_and_siblings_are_cancelled(
    autojump_clock: MockClock,
) -> None:
    log: list[str] = []
    steady, _, _ = probe_spec("steady", log)
    supervisor = Supervisor(
        [steady, ChildSpec("crasher", lambda: Scripted("crasher", log, outcome="crash"))],
        name="root", max_restarts=2, max_seconds=10,
    )
    sibling_cancelled = False

    async def sibling() -> None:
        nonlocal sibling_cancelled
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            sibling_cancelled = True
            raise

    def is_escalation(exc: RestartIntensityExceeded) -> bool:
        return (exc.supervisor, exc.child) == ("root", "crasher") and isinstance(
            exc.__cause__, Boom
        )

    with pytest.RaisesGroup(pytest.RaisesExc(RestartIntensityExceeded, check=is_escalation)):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sibling)
            nursery.start_soon(supervisor.run)
    assert sibling_cancelled
    assert count(log, "start crasher") == 3  # the first run and 2 restarts
    assert log[-1] == "end steady"  # the supervisor's own children were cancelled too


async def test_failures_spread_wider_than_the_window_never_escalate(
    autojump_clock: MockClock,
) -> None:
    log: list[str] = []
    crasher = ChildSpec("crasher", lambda: Scripted("crasher", log, outcome="crash", after_s=3))
    supervisor = Supervisor([crasher], max_restarts=2, max_seconds=5)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(31)
        supervisor.request_stop()
    assert count(log, "start crasher") == 11  # one crash every 3 s: never 3 within 5 s


async def test_one_for_all_restarts_the_siblings_in_order_after_stopping_them_in_reverse() -> None:
    log: list[str] = []
    a, address_a, _ = probe_spec("a", log)
    b, address_b, _ = probe_spec("b", log)
    c, _, _ = probe_spec("c", log)
    supervisor = Supervisor([a, b, c], strategy=Strategy.ONE_FOR_ALL)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await address_b.send(Add(7))
        assert await call(address_b, Get) == 7
        await address_a.send(Crash())
        await wait_all_tasks_blocked()
        assert await call(address_b, Get) == 0  # b was restarted too: fresh state
        assert [s.restarts for s in supervisor.statistics().children] == [1, 1, 1]
        nursery.cancel_scope.cancel()
    assert log[3:9] == ["end a", "end c", "end b", "start a", "start b", "start c"]


async def test_a_transient_child_is_restarted_after_a_crash_but_not_after_returning() -> None:
    log: list[str] = []
    spec, address, _ = probe_spec("t", log, restart=Restart.TRANSIENT)
    other, _, _ = probe_spec("other", log)
    supervisor = Supervisor([spec, other])
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await address.send(Crash())
        assert await call(address, Get) == 0  # restarted
        await address.send(Quit())
        await wait_all_tasks_blocked()
        assert count(log, "start t") == 2
        assert [s.running for s in supervisor.statistics().children] == [False, True]
        supervisor.request_stop()


async def test_a_temporary_child_is_never_restarted_and_an_empty_supervisor_returns() -> None:
    log: list[str] = []
    spec, address, _ = probe_spec("tmp", log, restart=Restart.TEMPORARY)
    supervisor = Supervisor([spec])
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await address.send(Crash())
    assert count(log, "start tmp") == 1


async def test_a_permanent_child_that_keeps_returning_is_restarted_then_escalates() -> None:
    # Regression (triotp): a permanent child exiting normally silently stopped restarting.
    log: list[str] = []
    quitter = ChildSpec("quitter", lambda: Scripted("quitter", log, outcome="return"))
    supervisor = Supervisor([quitter], max_restarts=3, max_seconds=1)
    with pytest.RaisesGroup(
        pytest.RaisesExc(RestartIntensityExceeded, check=lambda e: e.__cause__ is None)
    ):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(supervisor.run)
    assert count(log, "start quitter") == 4


async def test_cancelling_the_supervisor_is_not_a_crash(autojump_clock: MockClock) -> None:
    log: list[str] = []
    spec, _, _ = probe_spec("p", log)
    supervisor = Supervisor([spec], max_restarts=0)
    with trio.move_on_after(1):
        await supervisor.run()
    assert log == ["start p", "end p"]  # cancelled once, never restarted, no escalation


async def test_siblings_cancelled_by_one_for_all_are_not_counted_as_failures() -> None:
    log: list[str] = []
    a, address_a, _ = probe_spec("a", log)
    b, _, _ = probe_spec("b", log)
    c, _, _ = probe_spec("c", log)
    supervisor = Supervisor([a, b, c], strategy=Strategy.ONE_FOR_ALL, max_restarts=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await address_a.send(Crash())
        assert await call(address_a, Get) == 0
        assert supervisor.statistics().recent_failures == 1
        supervisor.request_stop()


async def test_graceful_stop_runs_drains_in_reverse_start_order_within_the_grace(
    autojump_clock: MockClock,
) -> None:
    log: list[str] = []
    a, address_a, _ = probe_spec("a", log)
    b, _, _ = probe_spec("b", log, drain_s=100, grace_s=2)  # too slow: cut at 2 s
    c, _, _ = probe_spec("c", log, drain_s=1)
    supervisor = Supervisor([a, b, c], grace_s=5)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        address_a.send_nowait(Add(4))  # queued before the stop: still handled
        supervisor.request_stop()
        started_at = trio.current_time()
    assert trio.current_time() - started_at == pytest.approx(3)  # c: 1 s, b: its 2 s grace
    assert [line for line in log if not line.startswith("start")] == [
        "draining c total=0", "drained c", "end c",
        "draining b total=0", "end b",
        "draining a total=4", "drained a", "end a",
    ]


async def test_a_child_failing_before_started_is_retried_then_escalates_through_start() -> None:
    log: list[str] = []
    flaky = ChildSpec("flaky", lambda: Scripted("flaky", log, outcome="crash-before-start"))
    later, _, _ = probe_spec("later", log)
    supervisor = Supervisor([flaky, later], max_restarts=2)
    with pytest.RaisesGroup(RestartIntensityExceeded):
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
    assert count(log, "start flaky") == 3
    assert "start later" not in log  # children start in order, each after the previous


async def test_started_reports_what_each_child_reported() -> None:
    log: list[str] = []
    a, _, _ = probe_spec("a", log)
    supervisor = Supervisor([a, ChildSpec("s", Scripted("s", log))])
    async with trio.open_nursery() as nursery:
        values = await nursery.start(supervisor.run)
        assert dict(values) == {"a": "a ready", "s": None}
        nursery.cancel_scope.cancel()


async def test_nested_supervisors_restart_subtrees_and_stop_in_reverse_order(
    autojump_clock: MockClock,
) -> None:
    log: list[str] = []
    x, _, _ = probe_spec("x", log)
    inner_a, address_a, _ = probe_spec("inner-a", log)
    inner_b, address_b, _ = probe_spec("inner-b", log)
    inner = ChildSpec("inner", lambda: Supervisor([inner_a, inner_b], name="inner", max_restarts=0))
    outer = Supervisor([x, inner], name="outer", max_restarts=5)
    async with trio.open_nursery() as nursery:
        await nursery.start(outer.run)
        await address_b.send(Add(1))
        await address_a.send(Crash())  # inner gives up at once; outer restarts it whole
        await wait_all_tasks_blocked()
        assert await call(address_b, Get) == 0  # a fresh inner-b, same address
        assert [s.restarts for s in outer.statistics().children] == [0, 1]
        log.clear()
        outer.request_stop()
    ends = [line for line in log if line.startswith("end")]
    assert ends == ["end inner-b", "end inner-a", "end x"]


async def test_child_names_must_be_unique() -> None:
    log: list[str] = []
    with pytest.raises(ValueError, match="unique"):
        Supervisor([ChildSpec("a", Scripted("a", log)), ChildSpec("a", Scripted("a", log))])
