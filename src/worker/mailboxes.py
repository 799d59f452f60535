"""The worker's mailboxes, opened before any actor exists.

So that each actor can be handed the addresses it sends to whatever order the actors
start in, and so that a restarted actor finds its inbox, and its senders it, where they
were. Only ``worker.app`` (the wiring), ``worker.flow`` and tests import this.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors import Address, Inbox, open_mailbox
from cluster.config import Config

from .executor.messages import ExecutorMsg
from .job_watcher.messages import JobWatcherMsg
from .locker.messages import LockerMsg
from .log_sink.messages import LogSinkMsg
from .registrar.messages import RegistrarMsg
from .scheduler.messages import SchedulerMsg


@dataclass(frozen=True)
class Addresses:
    scheduler: Address[SchedulerMsg]
    locker: Address[LockerMsg]
    executor: Address[ExecutorMsg]
    log_sink: Address[LogSinkMsg]
    registrar: Address[RegistrarMsg]
    job_watcher: Address[JobWatcherMsg]


@dataclass(frozen=True)
class Inboxes:
    scheduler: Inbox[SchedulerMsg]
    locker: Inbox[LockerMsg]
    executor: Inbox[ExecutorMsg]
    log_sink: Inbox[LogSinkMsg]
    registrar: Inbox[RegistrarMsg]
    job_watcher: Inbox[JobWatcherMsg]


def open_mailboxes(config: Config) -> tuple[Addresses, Inboxes]:
    """One bounded mailbox per actor, sized from the configuration."""
    size = config.mailbox_size
    scheduler = open_mailbox[SchedulerMsg](size, name="scheduler")
    locker = open_mailbox[LockerMsg](size, name="locker")
    executor = open_mailbox[ExecutorMsg](size, name="executor")
    log_sink = open_mailbox[LogSinkMsg](config.log_chan_len, name="log-sink")
    registrar = open_mailbox[RegistrarMsg](16, name="registrar")
    job_watcher = open_mailbox[JobWatcherMsg](16, name="job-watcher")
    boxes = (scheduler, locker, executor, log_sink, registrar, job_watcher)
    return Addresses(*(box[0] for box in boxes)), Inboxes(*(box[1] for box in boxes))
