"""How many runs this worker holds now: the Executor counts them, the Locker reads it.

The Locker waits longer before a backup claim the busier its worker is, and claims
nothing at ``capacity`` (``locker.placement``). It learnt the count from a
``LoadChanged`` message the Executor offered after every start and end: two Locker
wake-ups a run, its main cost once fires went in windows (issue 14).

Why a shared object and not a message (as ``SpillRoom`` and ``ClaimLead``): the Locker
reads it at every fire for nothing, and the count must outlive a restarted Locker (a
new one started from 0 until the next run began or ended). Made once per worker tree
(``worker.app``); used only in the trio thread.
"""

from __future__ import annotations

__all__ = ["RunLoad"]


class RunLoad:
    """``running``: the Executor's runs in progress or held (spawned ahead), now."""

    __slots__ = ("running",)

    def __init__(self) -> None:
        self.running = 0
