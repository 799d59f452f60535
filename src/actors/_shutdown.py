"""Process entry points: run a tree until SIGINT/SIGTERM, then stop it gracefully.

First signal: ``root.request_stop()`` (children stop in reverse start order, each
within its supervisor's grace) under an overall deadline of ``grace_s``. Second signal,
or that deadline: hard cancel. Either way the function returns normally, so ``main``
can flush what is left and exit 0; only a real failure of the tree raises.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import trio

from ._supervisor import Child

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ShutdownReport:
    """How ``run_until_signalled`` ended."""

    signal: int | None  # the first signal received; None if the root returned by itself
    forced: bool  # the grace ran out or a second signal came before the root returned


async def run_until_signalled(
    root: Child,
    *,
    signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM),
    grace_s: float = 30.0,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> ShutdownReport:
    """Run ``root`` until a signal stops it, gracefully first (see the module docstring).

    ``grace_s`` bounds the whole shutdown: make it exceed the sum of the children's
    graces, or it cuts the last ones short. Must run in the main thread (trio's rule
    for signal receivers); signals arriving during start-up are honoured at once.
    """
    received: int | None = None
    root_returned = False

    async def run_root(cancel_scope: trio.CancelScope) -> None:
        nonlocal root_returned
        await root.run(task_status=task_status)  # root's started() value reaches our caller
        root_returned = True
        cancel_scope.cancel()  # stop listening for signals

    with trio.open_signal_receiver(*signals) as signal_stream:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_root, nursery.cancel_scope)
            async for signum in signal_stream:
                if received is not None:
                    nursery.cancel_scope.cancel()  # second signal: no more waiting
                    break
                received = signum
                root.request_stop()
                nursery.cancel_scope.deadline = trio.current_time() + grace_s
    return ShutdownReport(signal=received, forced=received is not None and not root_returned)


async def unless_signalled(
    wait: Callable[[], Awaitable[T]],
    *,
    signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM),
) -> tuple[T | None, int | None]:
    """``wait()``, cancelled by the first signal: for what a process awaits before it
    has a tree to stop gracefully (an etcd that does not answer yet at start-up), so
    that SIGTERM then still ends it cleanly instead of killing it mid-wait.

    Returns ``(wait's value, None)``, or ``(None, the signal)`` when a signal came
    first. Must run in the main thread, as ``run_until_signalled``.
    """
    value: T | None = None
    received: int | None = None

    async def run_wait(cancel_scope: trio.CancelScope) -> None:
        nonlocal value
        value = await wait()
        cancel_scope.cancel()  # stop listening for signals

    with trio.open_signal_receiver(*signals) as signal_stream:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_wait, nursery.cancel_scope)
            async for signum in signal_stream:
                received = signum
                nursery.cancel_scope.cancel()
                break
    return (None, received) if received is not None else (value, None)
