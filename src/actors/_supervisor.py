"""Supervisors: start children in order, restart the ones that fail, stop them in reverse.

A child is anything with ``async run(*, task_status)`` and ``request_stop()``: an Actor,
another Supervisor (trees), or a small adapter around a server. Rules:

- Children start one after another; each must call ``task_status.started()`` before the
  next starts. The supervisor's own ``started()`` fires when all are up, reporting a
  mapping of child name -> the value each child passed to ``started()``.
- A child *fails* when it raises an Exception (a crash) or, if PERMANENT, returns. A
  failure during startup counts too. ``Cancelled`` is never a failure: it means the
  supervisor itself is being cancelled, or it is stopping the child on purpose.
- Every restart is a failure on the trio clock; more than ``max_restarts`` within
  ``max_seconds`` and the supervisor cancels its children (reverse order) and raises
  RestartIntensityExceeded, so the nursery around it cancels its siblings. A permanent
  child that keeps returning normally escalates the same way (never silently dropped).
- ONE_FOR_ONE restarts the failed child alone; ONE_FOR_ALL cancels the others (reverse
  order), then restarts all in order, except TEMPORARY ones, which are never restarted.
  A child failing during its (re)start is retried alone.
- ``request_stop()`` stops the children in reverse start order: each gets its own
  ``request_stop()``, then up to its grace to return, then is cancelled. Give a nested
  supervisor's ChildSpec a ``grace_s`` covering the sum of its children's graces. A
  supervisor whose children are all gone for good returns.
- A supervisor cancelled from outside cancels all its children at once (trio's rule);
  only ``request_stop()`` and escalation go child by child in reverse order.
- Every failure is logged (logger ``actors.supervisor``) as it is counted: the child's
  name, its exception with the traceback, its restart count and the intensity window,
  so a crash is never lost even when the child restarts cleanly right after.
"""

from __future__ import annotations

import enum
import logging
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import trio

from ._errors import RestartIntensityExceeded

log = logging.getLogger("actors.supervisor")


@runtime_checkable
class Child(Protocol):
    """What a supervisor can run: actors, supervisors, adapters."""

    async def run(self, *, task_status: trio.TaskStatus[Any] = ...) -> None: ...

    def request_stop(self) -> None: ...


class Restart(enum.Enum):
    PERMANENT = "permanent"  # always restarted, even after a normal return
    TRANSIENT = "transient"  # restarted only after a crash
    TEMPORARY = "temporary"  # never restarted


class Strategy(enum.Enum):
    ONE_FOR_ONE = "one_for_one"  # restart the failed child alone
    ONE_FOR_ALL = "one_for_all"  # restart every child: for children that depend on each other


@dataclass(frozen=True)
class ChildSpec:
    """How to run one child.

    ``child`` is a factory (a class or function) called at every (re)start, so that each
    incarnation starts from fresh state on the same Inbox; or a ready instance, then
    rerun as is (its state survives restarts). ``grace_s`` overrides the supervisor's.
    """

    name: str
    child: Child | Callable[[], Child]
    restart: Restart = Restart.PERMANENT
    grace_s: float | None = None

    def make(self) -> Child:
        if isinstance(self.child, Child) and not isinstance(self.child, type):
            return self.child
        return self.child()  # a factory, by the test above


@dataclass(frozen=True, slots=True)
class ChildStatistics:
    name: str
    running: bool
    restarts: int


@dataclass(frozen=True, slots=True)
class SupervisorStatistics:
    name: str
    children: tuple[ChildStatistics, ...]
    recent_failures: int  # failures within the last max_seconds


@dataclass(eq=False)
class _Slot:
    """One child position; its incarnation changes at every (re)start."""

    spec: ChildSpec
    child: Child | None = None
    incarnation: int = 0  # 0: never started
    running: bool = False  # its task is alive (starting, serving or stopping)
    started_value: object = None
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    finished: trio.Event = field(default_factory=trio.Event)


@dataclass(frozen=True, slots=True)
class _Exited:
    """A child's task ended by itself: normally (error None) or with a crash."""

    slot: _Slot
    incarnation: int
    error: Exception | None


class _Wake:
    """Tells the supervise loop to look at its stop flag."""


class _StartWatch:
    """Passes started() through to nursery.start and remembers that it happened."""

    def __init__(self, inner: trio.TaskStatus[Any]) -> None:
        self._inner = inner
        self.called = False

    def started(self, value: object = None) -> None:
        self._inner.started(value)
        self.called = True


def _wants_restart(restart: Restart, error: Exception | None) -> bool:
    if restart is Restart.PERMANENT:
        return True
    return restart is Restart.TRANSIENT and error is not None


class Supervisor:
    """Runs children per their ChildSpecs; see the module docstring for the rules."""

    def __init__(
        self,
        children: Sequence[ChildSpec],
        *,
        name: str = "supervisor",
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        grace_s: float = 5.0,
    ) -> None:
        names = [spec.name for spec in children]
        if len(set(names)) != len(names):
            raise ValueError(f"child names must be unique: {names}")
        self.name = name
        self._specs = tuple(children)
        self._strategy = strategy
        self._max_restarts = max_restarts
        self._max_seconds = max_seconds
        self._grace_s = grace_s
        self._slots: list[_Slot] = []
        self._failure_times: deque[float] = deque()
        self._stop_requested = False  # final: a stopped supervisor stays stopped
        self._events: trio.MemorySendChannel[_Exited | _Wake] | None = None
        self._nursery: trio.Nursery | None = None

    async def run(
        self, *, task_status: trio.TaskStatus[Mapping[str, object]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        self._slots = [_Slot(spec) for spec in self._specs]
        self._failure_times.clear()
        # Unbounded on purpose: at most one event per child incarnation plus one wake-up,
        # and restart intensity bounds incarnations; a bound could only lose an exit.
        self._events, events = trio.open_memory_channel[_Exited | _Wake](math.inf)
        escalation: RestartIntensityExceeded | None = None
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                await self._start_in_order(self._slots)
                task_status.started(self._started_values())
                await self._supervise(events)
            except RestartIntensityExceeded as exc:
                escalation = exc
            await self._stop_all(graceful=escalation is None)
        if escalation is not None:
            raise escalation  # bare, outside our nursery: the parent sees one error

    @property
    def children(self) -> tuple[ChildSpec, ...]:
        """The child specs in start order (tools draw the tree from them)."""
        return self._specs

    def request_stop(self) -> None:
        """Stop the children gracefully, in reverse start order; never blocks."""
        if self._stop_requested:
            return
        self._stop_requested = True
        if self._events is not None:
            self._events.send_nowait(_Wake())

    def statistics(self) -> SupervisorStatistics:
        children = tuple(
            ChildStatistics(s.spec.name, s.running, max(0, s.incarnation - 1))
            for s in self._slots
        )
        window_start = trio.current_time() - self._max_seconds
        recent = sum(1 for t in self._failure_times if t >= window_start)
        return SupervisorStatistics(self.name, children, recent)

    # -- running -------------------------------------------------------------------

    def _started_values(self) -> Mapping[str, object]:
        return MappingProxyType({s.spec.name: s.started_value for s in self._slots if s.running})

    async def _supervise(self, events: trio.MemoryReceiveChannel[_Exited | _Wake]) -> None:
        # Runs while a child may still need us: alive, or exited with its event unread.
        while not self._stop_requested and (
            any(s.running for s in self._slots) or events.statistics().current_buffer_used
        ):
            event = await events.receive()
            # Events of an earlier incarnation are stale: ONE_FOR_ALL already restarted it.
            if isinstance(event, _Exited) and event.incarnation == event.slot.incarnation:
                await self._on_exit(event.slot, event.error)

    async def _on_exit(self, slot: _Slot, error: Exception | None) -> None:
        if not _wants_restart(slot.spec.restart, error):
            if error is not None:  # a temporary or transient child's crash: still shown
                self._log_not_restarted(slot, error)
            return
        self._count_failure(slot, error)
        if self._strategy is Strategy.ONE_FOR_ALL:
            await self._restart_all(slot)
        else:
            await self._start(slot)

    async def _restart_all(self, failed: _Slot) -> None:
        survivors = [s for s in self._slots if s.running]
        await self._stop_all(graceful=False)
        again = [
            s for s in self._slots
            if s is failed or (s in survivors and s.spec.restart is not Restart.TEMPORARY)
        ]
        await self._start_in_order(again)

    async def _start_in_order(self, slots: list[_Slot]) -> None:
        for slot in slots:
            if self._stop_requested:
                return
            await self._start(slot)

    async def _start(self, slot: _Slot) -> None:
        """Start one incarnation and wait for its started(); retry startup failures."""
        assert self._nursery is not None
        while True:
            slot.incarnation += 1
            slot.scope = trio.CancelScope()
            slot.finished = trio.Event()
            try:
                slot.child = slot.spec.make()
                slot.started_value = await self._nursery.start(self._run_child, slot)
                return
            except Exception as exc:
                if not _wants_restart(slot.spec.restart, exc):
                    self._log_not_restarted(slot, exc)
                    return
                self._count_failure(slot, exc)

    async def _run_child(self, slot: _Slot, *, task_status: trio.TaskStatus[Any]) -> None:
        """One incarnation. Errors before started() reach nursery.start; later, events."""
        assert slot.child is not None and self._events is not None
        incarnation, scope, status = slot.incarnation, slot.scope, _StartWatch(task_status)
        slot.running = True
        error: Exception | None = None
        try:
            with scope:
                await slot.child.run(task_status=status)
        except Exception as exc:
            if not status.called:
                raise
            error = exc
        finally:
            slot.running = False
            slot.finished.set()
        if status.called and not scope.cancelled_caught:  # we stopped it: no event
            self._events.send_nowait(_Exited(slot, incarnation, error))

    def _count_failure(self, slot: _Slot, error: Exception | None) -> None:
        now = trio.current_time()
        self._failure_times.append(now)
        while now - self._failure_times[0] > self._max_seconds:
            self._failure_times.popleft()
        gives_up = len(self._failure_times) > self._max_restarts
        self._log_failure(slot, error, gives_up=gives_up)
        if gives_up:
            raise RestartIntensityExceeded(
                self.name, slot.spec.name, self._max_restarts, self._max_seconds
            ) from error

    # -- logging -------------------------------------------------------------------

    def _log_failure(self, slot: _Slot, error: Exception | None, *, gives_up: bool) -> None:
        """One record per counted failure; ``exc_info`` carries the child's traceback.

        Called once ``_failure_times`` holds this failure, so the count includes it.
        ``slot.incarnation`` starts were made, so the next one is restart number
        ``slot.incarnation``. A crash is an error; a permanent child returning, a warning.
        """
        level = logging.WARNING if error is None else logging.ERROR
        what = "returned (a permanent child must not)" if error is None else "crashed"
        window = (f"{len(self._failure_times)} failure(s) in the last {self._max_seconds:g} s,"
                  f" at most {self._max_restarts} restarts allowed within that window")
        if gives_up:
            log.log(level, "supervisor %r: child %r %s after %d restarts; giving up (%s)",
                    self.name, slot.spec.name, what, slot.incarnation - 1, window,
                    exc_info=error)
        else:
            log.log(level, "supervisor %r: child %r %s; restart %d (%s)",
                    self.name, slot.spec.name, what, slot.incarnation, window,
                    exc_info=error)

    def _log_not_restarted(self, slot: _Slot, error: Exception) -> None:
        log.error("supervisor %r: child %r crashed after %d restarts; not restarted (%s)",
                  self.name, slot.spec.name, slot.incarnation - 1, slot.spec.restart.value,
                  exc_info=error)

    # -- stopping ------------------------------------------------------------------

    async def _stop_all(self, *, graceful: bool) -> None:
        for slot in reversed(self._slots):
            if slot.running:
                await self._stop(slot, graceful=graceful)

    async def _stop(self, slot: _Slot, *, graceful: bool) -> None:
        """Request, wait up to the grace, then cancel; returns once the task is gone."""
        assert slot.child is not None
        if graceful:
            slot.child.request_stop()
            grace_s = self._grace_s if slot.spec.grace_s is None else slot.spec.grace_s
            with trio.move_on_after(grace_s):
                await slot.finished.wait()
        slot.scope.cancel()
        await slot.finished.wait()
