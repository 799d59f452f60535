"""Small actors and children shared by the actor-runtime tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import trio

from actors import Actor, Inbox, Reply


class Boom(Exception):
    """The crash every test child raises on purpose."""


@dataclass(frozen=True)
class Add:
    n: int


@dataclass(frozen=True)
class Get:
    reply: Reply[int]


@dataclass(frozen=True)
class Crash:
    pass


@dataclass(frozen=True)
class Quit:
    """Makes the probe's run() return normally."""


@dataclass(frozen=True)
class SlowEcho:
    delay_s: float
    text: str
    reply: Reply[str]


@dataclass(frozen=True)
class FailWith:
    error: Exception
    reply: Reply[int]


@dataclass(frozen=True)
class Explode:
    """Crashes the probe while it holds the caller's reply."""

    reply: Reply[int]


ProbeMsg = Add | Get | Crash | Quit | SlowEcho | FailWith | Explode


class Probe(Actor[ProbeMsg]):
    """A counter that logs its life in ``log`` ("start x", "drained x", "end x")."""

    def __init__(self, inbox: Inbox[ProbeMsg], log: list[str], drain_s: float = 0.0) -> None:
        super().__init__(inbox)
        self.log = log
        self.drain_s = drain_s
        self.total = 0
        self._quit = trio.CancelScope()

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        self.log.append(f"start {self.name}")
        try:
            task_status.started(f"{self.name} ready")
            with self._quit:
                await self.serve()
        finally:
            self.log.append(f"end {self.name}")

    async def handle(self, msg: ProbeMsg) -> None:
        match msg:
            case Add(n):
                self.total += n
            case Get(reply):
                reply.send(self.total)
            case Crash():
                raise Boom(self.name)
            case Quit():
                self._quit.cancel()
            case SlowEcho(delay_s, text, reply):
                await trio.sleep(delay_s)
                reply.send(text)
            case FailWith(error, reply):
                reply.fail(error)
            case Explode():
                raise Boom(self.name)

    async def drain(self) -> None:
        self.log.append(f"draining {self.name} total={self.total}")
        await trio.sleep(self.drain_s)
        self.log.append(f"drained {self.name}")


class Scripted:
    """A bare Child (no mailbox): crashes or returns after ``after_s``, or waits."""

    def __init__(
        self,
        name: str,
        log: list[str],
        *,
        outcome: str = "wait",  # "crash", "return", "crash-before-start" or "wait"
        after_s: float = 0.0,
    ) -> None:
        self.name, self.log, self.outcome, self.after_s = name, log, outcome, after_s

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        self.log.append(f"start {self.name}")
        try:
            if self.outcome == "crash-before-start":
                raise Boom(self.name)
            task_status.started()
            if self.outcome == "wait":
                await trio.sleep_forever()
            await trio.sleep(self.after_s)
            if self.outcome == "crash":
                raise Boom(self.name)
        finally:
            self.log.append(f"end {self.name}")

    def request_stop(self) -> None:
        self.log.append(f"stop requested {self.name}")


def count(log: list[str], entry: str) -> int:
    return sum(1 for line in log if line == entry)
