"""The Actor base class: an actor declares its handling, the runtime runs it.

An actor is its state, one Inbox, one message union and the hooks it needs; ``run``
belongs to the runtime. The common shape needs only ``handle``::

    class Counter(Actor[CounterMsg]):
        def __init__(self, inbox: Inbox[CounterMsg]) -> None:
            super().__init__(inbox)
            self.count = 0

        async def handle(self, msg: CounterMsg) -> None:
            match msg:
                case Increment(by):
                    self.count += by
                case Get(reply):
                    reply.send(self.count)

The hooks, each optional, in the order of an actor's life:

``setup()``
    Work before the actor is ready (open a file, register). What it returns is what the
    actor reports to its supervisor as started.
``background()``
    Tasks that live as long as the actor: watches, batchers, keep-alives. A task that
    takes ``task_status`` is started with ``nursery.start`` (the actor is ready only
    once it reports), any other with ``start_soon``.
``timer_deadline()`` / ``on_timer()``
    ``on_timer`` runs whenever the trio time ``timer_deadline()`` passes while the actor
    waits for a message. The deadline is asked again after every message and every tick,
    and a due timer goes before queued messages.
``handle(msg)``
    Each message, in order. Work that must not hold up the mailbox goes to
    ``spawn(fn, *args)``: a task of the actor's own, at most ``task_limit`` at once;
    while all are taken the actor stops reading its mailbox (backpressure).
    ``spawn_nowait`` raises ``trio.WouldBlock`` instead, for code that must not wait
    (a callback); it may run in any of the actor's tasks, while the actor serves.
``request_stop()``
    Called by the supervisor to ask for a graceful stop: it seals the inbox. Override it
    only to stop something at once as well (the Scheduler stops firing); never block,
    and call ``super()``.
``drain()``
    The graceful stop (``request_stop`` seals the inbox): runs once every queued message
    is handled. Then the spawned tasks are awaited, then the background is cancelled.
``teardown()``
    Runs however the actor ends (stopped, crashed, cancelled), once ``setup`` returned
    and the background has stopped: the last chance to keep what must not be lost (the
    LogSink spills its memory). After a cancel it runs in the cancelled scope: shield
    what must block, and bound it (``trio.move_on_after(s, shield=True)``).

A crash anywhere (a handler, a spawned or background task) crashes the actor; a crash in
``handle`` fails the caller's Reply (CallFailed) first.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import trio

from ._call import fail_unanswered
from ._mailbox import Address, Inbox, MailboxStatistics

M = TypeVar("M")

Task = Callable[..., Awaitable[object]]


@dataclass(frozen=True, slots=True)
class ActorStatistics:
    """A snapshot of one actor, including what its predecessors on the inbox did."""

    name: str
    mailbox: MailboxStatistics
    messages_handled: int  # taken from the inbox, across restarts (the one in hand counts)
    restarts: int  # actors built on this inbox before this one


class Actor(Generic[M]):
    """Base class of actors. A supervisor builds a fresh one on the same inbox per restart.

    ``task_limit`` bounds the tasks ``spawn`` runs at once (None: the actor's docstring
    says what bounds them instead).
    """

    def __init__(self, inbox: Inbox[M], *, task_limit: int | None = None) -> None:
        self.inbox = inbox
        self._restarts = inbox._attach()  # noqa: SLF001 (package-internal)
        self._task_slots = trio.Semaphore(task_limit) if task_limit is not None else None
        self._tasks: trio.Nursery | None = None
        self.tasks_running = 0

    @property
    def name(self) -> str:
        return self.inbox.name

    @property
    def address(self) -> Address[M]:
        return self.inbox.address

    # -- the runtime ------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        """setup, background, ready, serve until stopped, drain, tasks end, background
        stops, teardown (also after a crash or a cancel)."""
        ready = await self.setup()
        try:
            async with trio.open_nursery() as background:
                for task in self.background():
                    if "task_status" in inspect.signature(task).parameters:
                        await background.start(task)
                    else:
                        background.start_soon(task)
                # Nested: spawned tasks end (and may use the background) before it stops.
                async with trio.open_nursery() as tasks:
                    self._tasks = tasks
                    task_status.started(ready)
                    await self.serve()
                self._tasks = None
                background.cancel_scope.cancel()
        finally:
            await self.teardown()

    async def serve(self) -> None:
        """Handle every message until the inbox is sealed and empty, then drain()."""
        if type(self).timer_deadline is Actor.timer_deadline:
            async for msg in self.inbox:
                await self._handle_one(msg)
        else:
            await self._serve_with_timer()
        await self.drain()

    async def _serve_with_timer(self) -> None:
        while True:
            with trio.move_on_at(self.timer_deadline()) as timer:
                try:
                    msg = await self.inbox.receive()
                except trio.EndOfChannel:
                    return
            # Outside the timer's scope: a tick never cancels a handler, nor the reverse.
            if timer.cancelled_caught:
                await self.on_timer()
            else:
                await self._handle_one(msg)

    async def _handle_one(self, msg: M) -> None:
        try:
            await self.handle(msg)
        except Exception as exc:
            fail_unanswered(msg, exc)
            raise

    async def spawn(self, fn: Task, *args: object, name: str | None = None) -> None:
        """Run ``fn(*args)`` in a task of the actor's; waits while ``task_limit`` run.
        ``name`` is the task's, for tracebacks (default: ``fn``'s)."""
        if self._tasks is None:
            raise RuntimeError(f"{self.name}: spawn() is for handlers, while the actor serves")
        if self._task_slots is not None:
            await self._task_slots.acquire()
        self._start_task(self._tasks, fn, args, name)

    def spawn_nowait(self, fn: Task, *args: object, name: str | None = None) -> None:
        """``spawn`` that never blocks: raises ``trio.WouldBlock`` while ``task_limit``
        run (never, without a limit)."""
        if self._tasks is None:
            raise RuntimeError(f"{self.name}: spawn_nowait() is for while the actor serves")
        if self._task_slots is not None:
            self._task_slots.acquire_nowait()
        self._start_task(self._tasks, fn, args, name)

    def _start_task(self, tasks: trio.Nursery, fn: Task, args: tuple[object, ...],
                    name: str | None) -> None:
        self.tasks_running += 1
        tasks.start_soon(self._run_task, fn, args, name=name or fn)

    async def _run_task(self, fn: Task, args: tuple[object, ...]) -> None:
        try:
            await fn(*args)
        finally:
            self.tasks_running -= 1
            if self._task_slots is not None:
                self._task_slots.release()

    # -- the hooks ----------------------------------------------------------------------

    async def setup(self) -> object:
        """Work before the actor is ready; the value is reported as started."""
        return None

    def background(self) -> Iterable[Task]:
        """Tasks that live as long as the actor (called once per incarnation)."""
        return ()

    def timer_deadline(self) -> float:
        """The trio time at which ``on_timer`` runs next (inf: none)."""
        return math.inf

    async def on_timer(self) -> None:
        """Runs when ``timer_deadline()`` passed while waiting for a message."""

    async def handle(self, msg: M) -> None:
        """Handle one message; dispatch with ``match`` on the actor's message union."""
        raise NotImplementedError(f"{type(self).__name__} must define handle()")

    async def drain(self) -> None:
        """Graceful-stop hook: flush, finish work in flight. Runs within the grace."""

    async def teardown(self) -> None:
        """Runs at every end once setup returned, after the background stopped. Shield
        what must block (it may run cancelled), bounded."""

    def request_stop(self) -> None:
        """Ask for a graceful stop by sealing the inbox; never blocks. Override to wake
        a task that waits on something else, and call super()."""
        self.inbox.seal()

    def statistics(self) -> ActorStatistics:
        mailbox = self.inbox.statistics()
        return ActorStatistics(
            name=self.name,
            mailbox=mailbox,
            messages_handled=mailbox.received_total,
            restarts=self._restarts,
        )
