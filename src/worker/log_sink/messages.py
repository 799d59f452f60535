"""What the LogSink is sent (``LogSinkMsg``): run records to store from the Executor and
the Scheduler, flush requests (the Registrar, before it gives up the session), and the
session lease (``SessionChanged``, defined with the Registrar's messages, its sender):
``None`` means fenced, and every record not yet known stored goes to the spill file at
once, as does every record received until the session is back.

Mailbox (``log_chan_len``): full means senders wait (backpressure), never a drop; the
one exception is an Executor cancelled mid-run, which only offers its last record and
counts and logs it if the mailbox is full. See ``worker.log_sink.actor``.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors import Reply
from cluster.store import RunRecord

from worker.registrar.messages import SessionChanged


@dataclass(frozen=True, slots=True)
class Write:
    record: RunRecord


@dataclass(frozen=True, slots=True)
class Flush:
    """Answer once every record received before this one is in the store (or spilled)."""

    reply: Reply[None]


LogSinkMsg = Write | Flush | SessionChanged
