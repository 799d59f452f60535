"""How the JobWatcher's listeners send: awaited, so a full peer stalls that prefix's
mirror, which then stops pulling from etcd (backpressure, never a drop); a peer that
stopped during a shutdown (``tell`` answers False) is skipped."""

from __future__ import annotations

import logging
from typing import TypeVar

from actors import Address

log = logging.getLogger(__name__)

M = TypeVar("M")


async def deliver(address: Address[M], msg: M) -> None:
    if not await address.tell(msg):
        log.debug("%s has stopped: %s not delivered", address.name, type(msg).__name__)
