"""Messages of the fire path as if each fire went alone.

The Scheduler hands a window of fires to the Locker in one ``ClaimWindow``, and the
Locker hands the runs one batch won back in one ``GrantedBatch`` (issue 14: a message
per fire cost every hop). Tests that follow fires one by one read them through
``one_per_fire``: a ``Claim`` per fire, a ``Granted`` per run, in order.
"""

from __future__ import annotations

from collections.abc import Iterable

from worker.locker.messages import Claim, ClaimWindow
from worker.scheduler.messages import Granted, GrantedBatch


def one_per_fire(messages: Iterable[object]) -> list:
    out: list = []
    for msg in messages:
        if isinstance(msg, ClaimWindow):
            assert len(msg.fires) > 1  # a lone fire goes as a Claim
            out += [Claim(fire) for fire in msg.fires]
        elif isinstance(msg, GrantedBatch):
            assert len(msg.runs) > 1  # a lone run goes as a Granted
            out += [Granted(run) for run in msg.runs]
        else:
            out.append(msg)
    return out
