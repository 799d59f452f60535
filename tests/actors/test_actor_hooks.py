"""The hooks an actor declares (setup, background, timer, spawn, drain) and their order."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import trio
import trio.testing

from actors import Actor, Inbox, Reply, call, open_mailbox


@dataclass(frozen=True)
class Note:
    text: str


@dataclass(frozen=True)
class Work:
    delay_s: float
    done: Reply[str]


@dataclass(frozen=True)
class Explode:
    pass


Msg = Note | Work | Explode


@dataclass
class Journal:
    """What the actor under test did, in order, with the trio time of each entry."""

    entries: list[tuple[str, float]] = field(default_factory=list)

    def log(self, what: str) -> None:
        self.entries.append((what, trio.current_time()))

    def names(self) -> list[str]:
        return [what for what, _ in self.entries]


class Probe(Actor[Msg]):
    """Every hook writes to the journal; ``tick_every_s`` turns the timer on."""

    def __init__(self, inbox: Inbox[Msg], journal: Journal, *, task_limit: int | None = None,
                 tick_every_s: float | None = None) -> None:
        super().__init__(inbox, task_limit=task_limit)
        self.journal = journal
        self.tick_every_s = tick_every_s
        self.next_tick: float | None = None  # from when it is ready, unless a test sets it

    async def setup(self) -> object:
        await trio.sleep(1)
        self.journal.log("setup")
        return "ready-value"

    def background(self):  # type: ignore[no-untyped-def]
        return (self._watch, self._batcher)

    async def _watch(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await trio.sleep(2)  # its first read: the actor is ready only after it
        self.journal.log("watch ready")
        if self.tick_every_s and self.next_tick is None:
            self.next_tick = trio.current_time() + self.tick_every_s
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            self.journal.log("watch stopped")

    async def _batcher(self) -> None:
        try:
            await trio.sleep_forever()
        finally:
            self.journal.log("batcher stopped")

    def timer_deadline(self) -> float:
        return self.next_tick if self.next_tick is not None else super().timer_deadline()

    async def on_timer(self) -> None:
        assert self.tick_every_s is not None and self.next_tick is not None
        self.journal.log("tick")
        self.next_tick += self.tick_every_s

    async def handle(self, msg: Msg) -> None:
        match msg:
            case Note(text):
                self.journal.log(text)
            case Work(delay_s, done):
                await self.spawn(self._work, delay_s, done)
            case Explode():
                await self.spawn(self._explode)

    async def _work(self, delay_s: float, done: Reply[str]) -> None:
        await trio.sleep(delay_s)
        self.journal.log(f"work {delay_s}")
        done.send("done")

    async def _explode(self) -> None:
        raise ValueError("spawned task failed")

    async def drain(self) -> None:
        self.journal.log("drain")


def _probe(**kwargs: object) -> tuple[Probe, Journal]:
    address, inbox = open_mailbox[Msg](4, name="probe")
    journal = Journal()
    return Probe(inbox, journal, **kwargs), journal  # type: ignore[arg-type]


async def test_setup_and_ready_background_come_before_ready_and_setup_value_is_reported(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe, journal = _probe()
    async with trio.open_nursery() as nursery:
        value = await nursery.start(probe.run)
        journal.log("ready")
        probe.request_stop()
    assert value == "ready-value"
    assert journal.names() == ["setup", "watch ready", "ready", "drain",
                               "watch stopped", "batcher stopped"] or journal.names() == [
        "setup", "watch ready", "ready", "drain", "batcher stopped", "watch stopped"]
    times = dict(journal.entries)
    assert times["setup"] == pytest.approx(1) and times["watch ready"] == pytest.approx(3)


async def test_spawned_tasks_end_after_drain_and_before_the_background_stops(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe, journal = _probe()
    async with trio.open_nursery() as nursery:
        await nursery.start(probe.run)
        replies: list[str] = []

        async def ask(delay_s: float) -> None:
            replies.append(await call(probe.address, lambda r: Work(delay_s, r)))

        nursery.start_soon(ask, 5)
        await trio.sleep(1)
        probe.request_stop()
    assert replies == ["done"]
    names = journal.names()
    assert names.index("drain") < names.index("work 5") < names.index("watch stopped")


async def test_spawn_stops_reading_the_mailbox_while_task_limit_tasks_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe, journal = _probe(task_limit=2)
    async with trio.open_nursery() as nursery:
        await nursery.start(probe.run)
        start = trio.current_time()
        for delay in (10, 9, 1):  # the third waits for the second's slot: ends at 10, not 1
            nursery.start_soon(call, probe.address, lambda r, d=delay: Work(d, r))
            await trio.sleep(0.1)
        assert probe.tasks_running == 2
        assert probe.inbox.statistics().depth == 0  # taken, and waiting for a slot
        await trio.sleep(20)
        probe.request_stop()
    work = {what: when - start for what, when in journal.entries if what.startswith("work")}
    assert work["work 10"] == pytest.approx(10, abs=0.01)
    assert work["work 9"] == pytest.approx(9.1, abs=0.01)
    assert work["work 1"] == pytest.approx(10.1, abs=0.01)
    assert probe.tasks_running == 0


async def test_a_crash_in_a_spawned_task_crashes_the_actor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe, _ = _probe()
    with pytest.RaisesGroup(pytest.RaisesExc(ValueError, match="spawned task failed"),
                            flatten_subgroups=True):
        async with trio.open_nursery() as nursery:
            await nursery.start(probe.run)
            await probe.address.send(Explode())
            await trio.sleep_forever()


async def test_the_timer_ticks_on_time_between_messages_and_before_queued_ones(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe, journal = _probe(tick_every_s=10)
    async with trio.open_nursery() as nursery:
        await nursery.start(probe.run)
        start = trio.current_time()
        await trio.sleep(15)
        await probe.address.send(Note("a"))
        await trio.sleep(20)  # ticks at 20 and 30 after start
        probe.request_stop()
    ticks = [round(when - start) for what, when in journal.entries if what == "tick"]
    assert ticks == [10, 20, 30]
    assert journal.names().index("a") == journal.names().index("tick") + 1


async def test_a_late_timer_goes_before_messages_already_queued(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe, journal = _probe(tick_every_s=10)
    probe.next_tick = 0.0  # due when it starts serving, behind two messages
    probe.address.send_nowait(Note("first"))
    probe.address.send_nowait(Note("second"))
    async with trio.open_nursery() as nursery:
        await nursery.start(probe.run)
        await trio.sleep(1)
        probe.request_stop()
    assert journal.names()[2:5] == ["tick", "first", "second"]


async def test_spawn_nowait_refuses_a_task_past_task_limit_instead_of_waiting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe, _ = _probe(task_limit=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(probe.run)
        probe.spawn_nowait(trio.sleep, 5)
        with pytest.raises(trio.WouldBlock):
            probe.spawn_nowait(trio.sleep, 5)
        assert probe.tasks_running == 1
        await trio.sleep(6)
        probe.spawn_nowait(trio.sleep, 1)  # its slot is free again
        assert probe.tasks_running == 1
        probe.request_stop()
    assert probe.tasks_running == 0


async def test_spawn_outside_serving_is_refused() -> None:
    probe, _ = _probe()
    with pytest.raises(RuntimeError, match="spawn"):
        await probe.spawn(trio.sleep, 0)
    with pytest.raises(RuntimeError, match="spawn_nowait"):
        probe.spawn_nowait(trio.sleep, 0)


class TornDown(Probe):
    """A Probe whose teardown takes ``teardown_s`` (shielded, as the hook asks)."""

    teardown_s = 3.0
    setup_fails = False

    async def setup(self) -> object:
        if self.setup_fails:
            raise OSError("setup failed")
        return await super().setup()

    async def teardown(self) -> None:
        with trio.move_on_after(10, shield=True):
            await trio.sleep(self.teardown_s)
            self.journal.log("teardown")


def _torn_down() -> tuple[TornDown, Journal]:
    address, inbox = open_mailbox[Msg](4, name="torn-down")
    journal = Journal()
    return TornDown(inbox, journal), journal


async def test_teardown_runs_last_on_a_graceful_stop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    actor, journal = _torn_down()
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        actor.request_stop()
    names = journal.names()
    assert names[-1] == "teardown" and names.index("drain") < names.index("watch stopped")


async def test_teardown_runs_after_a_crash_once_the_background_stopped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    actor, journal = _torn_down()
    with pytest.RaisesGroup(pytest.RaisesExc(ValueError, match="spawned task failed"),
                            flatten_subgroups=True):
        async with trio.open_nursery() as nursery:
            await nursery.start(actor.run)
            await actor.address.send(Explode())
            await trio.sleep_forever()
    names = journal.names()
    assert "drain" not in names and names[-1] == "teardown"
    assert {"watch stopped", "batcher stopped"} <= set(names[:-1])


async def test_teardown_runs_after_a_cancel_and_may_shield_its_work(
    autojump_clock: trio.testing.MockClock,
) -> None:
    actor, journal = _torn_down()
    with trio.move_on_after(10) as scope:
        async with trio.open_nursery() as nursery:
            await nursery.start(actor.run)
            await trio.sleep_forever()
    assert scope.cancelled_caught
    teardown_at = dict(journal.entries)["teardown"]
    assert teardown_at == pytest.approx(10 + actor.teardown_s)  # its shielded sleep ran
    assert journal.names()[-1] == "teardown"


async def test_no_teardown_when_setup_failed(autojump_clock: trio.testing.MockClock) -> None:
    actor, journal = _torn_down()
    actor.setup_fails = True
    with pytest.raises(OSError, match="setup failed"):
        await actor.run()
    assert journal.names() == []
