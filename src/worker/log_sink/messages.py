"""What the LogSink is sent (``LogSinkMsg``): run records to store from the Executor and
the Scheduler, and flush requests (the Registrar, before it gives up the session).

Mailbox (``log_chan_len``): full means senders wait (backpressure), never a drop; the
one exception is an Executor cancelled mid-run, which only offers its last record and
counts and logs it if the mailbox is full. See ``worker.log_sink.actor``.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors import Reply
from cluster.store import RunRecord


@dataclass(frozen=True, slots=True)
class Write:
    record: RunRecord


@dataclass(frozen=True, slots=True)
class Flush:
    """Answer once every record received before this one is in the store (or spilled)."""

    reply: Reply[None]


LogSinkMsg = Write | Flush
