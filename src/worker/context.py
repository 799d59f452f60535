"""What every worker actor is given: configuration, identity, keyspace and clock.

Not the other actors' addresses: each actor is given those it sends to, by name, in
``worker.app.build_tree`` (so the wiring shows the message flow). Not the metrics either:
they read the actors' statistics from outside (``worker.metrics``), so no actor needs them.
"""

from __future__ import annotations

from dataclasses import dataclass

from cluster.config import Config
from cluster.keyspace import Keyspace

from .clock import WallClock


@dataclass(frozen=True)
class WorkerContext:
    config: Config
    worker_id: str
    keyspace: Keyspace
    clock: WallClock
