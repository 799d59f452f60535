"""The Registrar's messages: it is sent none (``RegistrarMsg`` is empty: its inbox exists
so that the runtime can stop it; sealing it is the graceful stop), and it sends
``SessionChanged`` to three actors, the Locker, the Executor and the LogSink: defined
here, with its sender, and part of their unions.

Sends to them await (backpressure). See ``worker.registrar.actor``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Never

RegistrarMsg = Never


@dataclass(frozen=True, slots=True)
class SessionChanged:
    """The worker's session lease: None while it has none (lost, re-registering)."""

    lease_id: int | None
