"""A small actor runtime on trio: typed mailboxes, calls, supervisors, graceful stop.

It knows nothing of cron; everything else in the project builds on it.

Writing an actor
    One frozen-dataclass message union per actor; a bounded mailbox made *before* the
    actor, so that addresses can be wired in any order and survive restarts::

        @dataclass(frozen=True)
        class Increment:
            by: int

        @dataclass(frozen=True)
        class Get:
            reply: Reply[int]

        CounterMsg = Increment | Get

        class Counter(Actor[CounterMsg]):
            def __init__(self, inbox: Inbox[CounterMsg]) -> None:
                super().__init__(inbox)
                self.count = 0

            async def handle(self, msg: CounterMsg) -> None:
                match msg:
                    case Increment(by):
                        self.count += by
                    case Get(reply):
                        reply.send(self.count)  # never blocks; ignores a gone caller

        address, inbox = open_mailbox[CounterMsg](16, name="counter")
        await address.send(Increment(1))          # waits while full: backpressure
        address.send_nowait(Increment(1))         # or raises MailboxFull
        delivered = await address.tell(Increment(1))  # as send; False once it stopped
        queued = address.offer(Increment(1))      # never blocks: False if full or stopped
        with trio.fail_after(1):                  # the caller owns the deadline
            n = await call(address, lambda reply: Get(reply))

    An actor declares what it needs and the runtime (``Actor.run``) runs it: ``setup``
    before it is ready, ``background`` tasks that live as long as it does, a timer
    (``timer_deadline`` / ``on_timer``), ``spawn`` for handling that must not hold up the
    mailbox (at most ``task_limit`` tasks; beyond, it stops reading: backpressure),
    ``drain`` for a graceful stop, and ``teardown`` for what must happen however it ends
    (crash and cancel included). See ``actors._actor`` for the order of a life. Each
    actor documents what it does when a mailbox it sends to is full (wait, or count and
    spill; never a silent drop). A server error reaches the caller as CallFailed
    (``reply.fail(exc)``, or automatically when ``handle`` crashes while holding the reply).

Supervising
    ::

        root = Supervisor(
            [
                ChildSpec("sink", lambda: LogSink(sink_inbox)),
                ChildSpec("counter", lambda: Counter(inbox), Restart.PERMANENT),
                ChildSpec("web", WebAdapter(app), Restart.TRANSIENT, grace_s=10),
            ],
            strategy=Strategy.ONE_FOR_ONE, max_restarts=3, max_seconds=5, grace_s=5,
        )
        report = await run_until_signalled(root, grace_s=30)   # in main(); then exit 0

    Factories rebuild the actor (fresh state) on the same inbox at each restart: the
    message being handled when it crashed is lost, messages queued behind it are not.
    Children start in order and stop in reverse order; on a graceful stop each is
    sealed (new sends raise MailboxClosed, queued ones are handled), drained, and
    cancelled after its grace. Senders that may outlive their receivers during a
    shutdown use ``tell`` (or ``offer``), which answer False instead of raising
    MailboxClosed. Supervisors nest: a supervisor is a child like any.

Errors
    ActorError ── MailboxFull (also trio.WouldBlock), MailboxClosed (also
    trio.BrokenResourceError), CallFailed, AlreadyReplied, RestartIntensityExceeded.
    An Inbox raises trio.EndOfChannel once sealed and empty, trio.ClosedResourceError
    after you closed it. See ``actors._errors`` for when each happens.

Who may import it: anyone. It imports trio and nothing of ours, so that it can be read,
tested and reused on its own.
"""

from ._actor import Actor, ActorStatistics
from ._call import Reply, call
from ._errors import (
    ActorError,
    AlreadyReplied,
    CallFailed,
    MailboxClosed,
    MailboxFull,
    RestartIntensityExceeded,
)
from ._mailbox import Address, Inbox, MailboxStatistics, open_mailbox
from ._shutdown import ShutdownReport, run_until_signalled, unless_signalled
from ._supervisor import (
    Child,
    ChildSpec,
    ChildStatistics,
    Restart,
    Strategy,
    Supervisor,
    SupervisorStatistics,
)

__all__ = [
    "Actor",
    "ActorError",
    "ActorStatistics",
    "Address",
    "AlreadyReplied",
    "CallFailed",
    "Child",
    "ChildSpec",
    "ChildStatistics",
    "Inbox",
    "MailboxClosed",
    "MailboxFull",
    "MailboxStatistics",
    "Reply",
    "Restart",
    "RestartIntensityExceeded",
    "ShutdownReport",
    "Strategy",
    "Supervisor",
    "SupervisorStatistics",
    "call",
    "open_mailbox",
    "run_until_signalled",
    "unless_signalled",
]
