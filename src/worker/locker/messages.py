"""What the Locker is sent (``LockerMsg``): fires to claim and vanished runs to record
from the Scheduler, the live workers from the JobWatcher, the session lease from the
Registrar (``SessionChanged``, defined with the Registrar's messages, its sender). The
Executor's count of runs is no message: a shared ``worker.run_load.RunLoad``.

Mailbox: bounded (``mailbox_size``); senders wait, never a drop. See
``worker.locker.actor``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cluster.presence import RunningInfo, WorkerInfo
from cluster.retries import PendingRetry

from worker.messages import Fire
from worker.registrar.messages import SessionChanged


@dataclass(frozen=True, slots=True)
class Claim:
    fire: Fire


@dataclass(frozen=True, slots=True)
class ClaimWindow:
    """The fires one wake-up of the Scheduler handed over (``scheduler.plan``: a window),
    in one message: each is claimed as if it came alone, but the window costs the
    Scheduler, the outbox and the Locker one hop, not one per fire (issue 14)."""

    fires: tuple[Fire, ...]


@dataclass(frozen=True, slots=True)
class PersistRetry:
    """Write a pending retry to etcd (``cluster.retries``): any worker may then run it."""

    retry: PendingRetry


@dataclass(frozen=True, slots=True)
class ClaimLost:
    """Record a vanished run as ``lost`` (its command may have started), if nobody else
    does; ``chains``: the jobs chained after it, (name, on), whose triggers go with it."""

    info: RunningInfo
    chains: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class WorkersChanged:
    """The live workers; ``offsets_ms``: each known one's clock minus ours (ours is 0),
    a measurement that says nothing of who is live, hence left out of equality."""

    workers: tuple[WorkerInfo, ...]
    offsets_ms: Mapping[str, int] = field(default_factory=dict, compare=False)


LockerMsg = Claim | ClaimWindow | ClaimLost | PersistRetry | WorkersChanged | SessionChanged
