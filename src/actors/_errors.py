"""The errors of the actor runtime, each a small class that builds its own message.

Error tree (what a caller may catch, and when it happens)::

    Exception
     ├── trio.WouldBlock
     │    └── MailboxFull .............. send_nowait() into a full mailbox
     ├── trio.BrokenResourceError
     │    └── MailboxClosed ............ send to a mailbox whose actor stopped for good
     └── ActorError .................... base of everything this package raises itself
          ├── MailboxFull, MailboxClosed (also the trio classes above)
          ├── CallFailed ............... the server answered a call with reply.fail(exc),
          │                              or crashed while holding the reply; __cause__ = exc
          ├── AlreadyReplied ........... a server answered the same Reply twice (a bug)
          └── RestartIntensityExceeded . a supervisor gave up on a child; __cause__ = last crash

trio's own errors keep trio's meaning on an Inbox: ``trio.EndOfChannel`` once it was
sealed and emptied (graceful stop), ``trio.ClosedResourceError`` after you closed it.
"""

from __future__ import annotations

import trio


class ActorError(Exception):
    """Base of every error the actor runtime raises itself."""


class MailboxFull(ActorError, trio.WouldBlock):
    """send_nowait() found the mailbox full; ``await send()`` would have waited."""

    def __init__(self, mailbox: str, capacity: int) -> None:
        super().__init__(f"mailbox {mailbox!r} is full ({capacity} messages queued)")
        self.mailbox = mailbox
        self.capacity = capacity


class MailboxClosed(ActorError, trio.BrokenResourceError):
    """The actor behind this address has stopped for good: nobody will read the message.

    A BrokenResourceError in trio's sense: the *other* side went away; the sender closed
    nothing. A supervisor restart never causes it (the mailbox outlives the actor).
    """

    def __init__(self, mailbox: str) -> None:
        super().__init__(f"mailbox {mailbox!r} is closed: its actor has stopped")
        self.mailbox = mailbox


class CallFailed(ActorError):
    """The server of a call failed it; ``actor`` says which one, ``__cause__`` why."""

    def __init__(self, actor: str, cause: BaseException) -> None:
        super().__init__(f"call to {actor!r} failed: {cause!r}")
        self.actor = actor
        self.cause = cause


class AlreadyReplied(ActorError):
    """A server answered the same call twice: the second answer would be lost."""

    def __init__(self, actor: str) -> None:
        super().__init__(f"{actor!r} answered the same call twice")
        self.actor = actor


class RestartIntensityExceeded(ActorError):
    """A supervisor saw more than ``max_restarts`` failures within ``max_seconds``.

    Raised out of ``Supervisor.run`` after its children were cancelled, so the nursery
    around it cancels the supervisor's siblings: the failure escalates up the tree.
    ``__cause__`` is the child's last exception (None if it kept exiting normally).
    """

    def __init__(
        self, supervisor: str, child: str, max_restarts: int, max_seconds: float
    ) -> None:
        super().__init__(
            f"supervisor {supervisor!r} gave up: child {child!r} failed more than"
            f" {max_restarts} times within {max_seconds} s"
        )
        self.supervisor = supervisor
        self.child = child
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
