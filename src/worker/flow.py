"""The worker's message flow, read from the code: ``python -m worker.flow`` prints it.

Two facts make an arrow ``sender ──messages──> receiver``, and both come from the code
rather than from anyone's memory of it:

- the wiring: the sender actor, as ``build_tree`` builds it, holds the receiver's
  ``Address`` as an attribute of its own (each actor is given only the addresses it
  sends to);
- the messages: the receiver's message classes that the sender's package constructs
  (a call ``Granted(run)``, or a class handed to ``call(address, Flush)``).

A message is drawn on every arrow from its sender to a receiver that accepts it: the
sender's package is read as a whole, not each address's call sites (``SessionChanged``
really goes to both the Locker and the Executor). docs/DESIGN.md shows this output as its
flow diagram, and a test keeps the two equal.
"""

from __future__ import annotations

import ast
import importlib
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from actors import Actor, Address, Supervisor
from cluster.config import Config
from cluster.keyspace import Keyspace

from .app import build_tree
from .clock import SystemClock
from .context import WorkerContext
from .mailboxes import open_mailboxes

__all__ = ["Arrow", "arrows", "messages_accepted", "render"]

PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True, order=True)
class Arrow:
    sender: str  # an actor's name, as its mailbox is named ("log-sink")
    receiver: str
    messages: tuple[str, ...]


def arrows() -> list[Arrow]:
    """Every sender → receiver pair, the senders in the order a fire meets them (the
    reverse of the order they start in)."""
    found = []
    for actor in reversed(list(_actors(_build()))):
        for receiver in _addresses_held(actor):
            found.append(Arrow(actor.name, receiver, _messages_sent(actor.name, receiver)))
    return found


def render(found: list[Arrow]) -> str:
    width = max(len(a.sender) for a in found)
    return "\n".join(f"{a.sender:<{width}} ──{', '.join(a.messages)}──> {a.receiver}"
                     for a in found)


def _build() -> Supervisor:
    config = Config()
    _, inboxes = open_mailboxes(config)
    ctx = WorkerContext(config, "flow", Keyspace(config.prefix), SystemClock())
    return build_tree(ctx, inboxes, etcd=None)  # type: ignore[arg-type]  # never called


def _actors(supervisor: Supervisor) -> Iterator[Actor[typing.Any]]:
    for spec in supervisor.children:
        child = spec.make()
        if isinstance(child, Supervisor):
            yield from _actors(child)
        elif isinstance(child, Actor):
            yield child


def _addresses_held(actor: Actor[typing.Any]) -> list[str]:
    return [value.name for value in vars(actor).values()
            if isinstance(value, Address) and value is not actor.address]


def _package(actor_name: str) -> str:
    return actor_name.replace("-", "_")


def _messages_sent(sender: str, receiver: str) -> tuple[str, ...]:
    accepted = messages_accepted(receiver)
    built: set[str] = set()
    for path in sorted((PACKAGE_DIR / _package(sender)).rglob("*.py")):
        if path.name != "messages.py":
            built |= _constructed_names(path)
    return tuple(sorted(accepted & built))


def messages_accepted(receiver: str) -> set[str]:
    module = importlib.import_module(f"worker.{_package(receiver)}.messages")
    names: set[str] = set()
    for value in vars(module).values():  # the union (``LockerMsg = Claim | ...``)
        if isinstance(value, types.UnionType):
            names |= {m.__name__ for m in typing.get_args(value) if isinstance(m, type)}
    return names


def _constructed_names(path: Path) -> set[str]:
    """Names called, and names passed as arguments (``call(address, Flush)``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name):
            names.add(node.func.id)
        names |= {arg.id for arg in node.args if isinstance(arg, ast.Name)}
    return names


if __name__ == "__main__":
    print(render(arrows()))
