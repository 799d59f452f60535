"""The releases of ended runs: the ``active/`` guard of each run that holds one given
back in the background.

Why in the background: ``release(run)`` talks to etcd and retries by itself; a slow etcd
must never delay a record or the next run's start. A release that never succeeds is only
logged: the guard still goes with the session lease.

Lifetime (the Executor's graceful stop, in its ``drain``): the runs end and are recorded
first, so no release starts after ``finish()``; then the pending ones get ``wait_s`` more
(``ExecutorBudget.release_wait_s``) and are cancelled. If the Executor is cancelled
outright, they are cancelled with it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from worker.messages import Run

log = logging.getLogger(__name__)

Release = Callable[[Run], Awaitable[None]]


class Releases:
    """Hosts the releases in a nursery of its own: run ``serve`` as a background task."""

    def __init__(self, release: Release, *, wait_s: float) -> None:
        self._release = release
        self._wait_s = wait_s
        self._nursery: trio.Nursery | None = None
        self._finishing = trio.Event()  # finish() was called: serve stops taking releases
        self._done = trio.Event()  # serve has returned: no release is left

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the nursery of the releases until ``finish()``, then until they end."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await self._finishing.wait()
        finally:
            self._done.set()

    def start(self, run: Run) -> None:
        """Release ``run``'s keys in the background; never blocks."""
        assert self._nursery is not None, "serve() runs from the Executor's start"
        self._nursery.start_soon(self._release_quietly, run)

    async def finish(self) -> None:
        """Give the pending releases ``wait_s`` more, cancel those left, and return once
        none is left. Called once no run can start a release any more."""
        assert self._nursery is not None, "serve() runs from the Executor's start"
        self._nursery.cancel_scope.deadline = trio.current_time() + self._wait_s
        self._finishing.set()
        await self._done.wait()

    async def _release_quietly(self, run: Run) -> None:
        try:
            await self._release(run)
        except Exception:  # it retries by itself; a failure must not stop other runs
            log.exception("releasing the keys of run %s failed; they expire with the "
                          "session lease", run.fire.run_id)
