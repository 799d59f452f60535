"""What every part of the master is given: configuration, keyspace, clock, metrics.

Not the actors' addresses: mailboxes are opened before any actor exists
(``open_mailboxes``), so the HTTP app can be given the one it calls (the WorkerManager's,
in ``Services``) before the actors run, and a restarted actor is found where it was.
The JobManager and LogManager are services, not actors (``services``): no address.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from actors import Address, Inbox, open_mailbox
from cluster.config import Config
from cluster.keyspace import Keyspace
from cluster.store import StoreSettings

from .messages import AuditMoverMsg, RetentionMsg, SchedulableWatchMsg, WorkerManagerMsg
from .metrics import Metrics

__all__ = ["Addresses", "Clock", "Inboxes", "MasterContext", "open_mailboxes", "wall_ms"]

Clock = Callable[[], int]  # epoch milliseconds (the wall clock: fire times, createdAt)

# Head room over a dependency's own timeout before a handler gives up on a service.
CALL_MARGIN_S = 1.0
WORKERS_CALL_TIMEOUT_S = 3.0  # the WorkerManager answers from memory (or waits <= 1 s)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Addresses:
    workers: Address[WorkerManagerMsg]
    retention: Address[RetentionMsg]
    audit: Address[AuditMoverMsg]
    schedulable: Address[SchedulableWatchMsg]


@dataclass(frozen=True)
class Inboxes:
    workers: Inbox[WorkerManagerMsg]
    retention: Inbox[RetentionMsg]
    audit: Inbox[AuditMoverMsg]
    schedulable: Inbox[SchedulableWatchMsg]


def open_mailboxes(config: Config) -> tuple[Addresses, Inboxes]:
    """One bounded mailbox per actor: a full one makes HTTP handlers wait (within
    their deadline), which is the backpressure on clients."""
    size = config.mailbox_size
    workers = open_mailbox[WorkerManagerMsg](size, name="workers")
    retention = open_mailbox[RetentionMsg](1, name="retention")
    audit = open_mailbox[AuditMoverMsg](1, name="audit")
    schedulable = open_mailbox[SchedulableWatchMsg](1, name="schedulable")
    return (Addresses(workers[0], retention[0], audit[0], schedulable[0]),
            Inboxes(workers[1], retention[1], audit[1], schedulable[1]))


@dataclass(frozen=True)
class MasterContext:
    config: Config
    keyspace: Keyspace
    metrics: Metrics = field(default_factory=Metrics)
    clock: Clock = wall_ms

    @classmethod
    def create(cls, config: Config, *, clock: Clock = wall_ms,
               metrics: Metrics | None = None) -> MasterContext:
        return cls(config, Keyspace(config.prefix), metrics or Metrics(), clock)

    @property
    def store_settings(self) -> StoreSettings:
        s = self.config.db_timeout_s
        return StoreSettings(connect_timeout_s=s, query_timeout_s=s)

    @property
    def jobs_timeout_s(self) -> float:
        """How long a handler waits for the JobManager: one etcd call plus margin
        (a save is a few calls, but etcd answers in ms or fails fast when down)."""
        return self.config.etcd_request_timeout_s + CALL_MARGIN_S

    @property
    def runs_timeout_s(self) -> float:
        """How long a handler waits for the LogManager: one store call plus margin."""
        return self.store_settings.call_timeout_s + CALL_MARGIN_S

    @property
    def workers_timeout_s(self) -> float:
        return WORKERS_CALL_TIMEOUT_S
