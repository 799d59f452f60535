"""What the actor tests read from a mailbox without waiting."""

from __future__ import annotations

import trio

from actors import Inbox


def queued(inbox: Inbox) -> list:
    """Every message queued in ``inbox`` now, taken out, in order."""
    out = []
    while True:
        try:
            out.append(inbox.receive_nowait())
        except trio.WouldBlock:
            return out
