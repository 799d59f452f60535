"""The LogSink while its worker is fenced: what it holds goes to the spill file at once.

Why: a fenced worker (its session lease lost, ``worker.registrar``) has just killed its
runs, and their records are the only account of them. Its store may be as unreachable as
etcd (one network cut), and then the batch in flight to it hangs, without failing, for
as long as the cut lasts: records would wait in memory, and a worker that died meanwhile
would lose them. So on ``SessionChanged(None)`` every record not yet known stored, in
memory or in flight to the store, is appended (fsync'd) to the spill file without
waiting for that write, and so is every record received until the session is back.

Duplicates: a batch in flight to the store when it was spilled may still be stored
when its write returns. Its records are then remembered (``stored``) and skipped when
the spill file is replayed (``unstored``), so that each is written once; were a copy
written twice anyway (a crash in between), the store upserts on run_id.

Running keys: no ``on_durable`` for these records. Their ``running/`` keys are on the
lost lease, gone with it or going (the Registrar revokes it), and deleting them would
wait on an etcd this worker cannot reach.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

from cluster.store import RunRecord

from .ledger import Ledger
from .spill import SpillFile

log = logging.getLogger(__name__)


class Fence:
    """The fenced state of one LogSink, and what its fences spilled."""

    def __init__(self) -> None:
        self.fenced = False
        self.spilled_total = 0  # records a fence spilled, since the start
        self._this_fence = 0  # ... since the last fence
        self._spilled_in_flight: dict[int, list[RunRecord]] = {}  # by transit key
        self._stored: dict[str, RunRecord] = {}  # spilled, then stored: skip at replay

    async def secure(self, ledger: Ledger, spill: SpillFile) -> int:
        """Append memory and the batches in flight to the store to the spill file, at
        once; how many. Raises SpillError (memory back in place, nothing changed)."""
        in_flight = ledger.in_flight_to_store()
        memory = ledger.pop(len(ledger.memory))
        entries = sorted([*memory, *itertools.chain(*in_flight.values())])
        if not entries:
            return 0
        key = ledger.enter_transit(memory)
        try:
            await spill.append([e.record for e in entries])
        except BaseException:
            ledger.leave_transit(key, restore=True)
            raise
        ledger.leave_transit(key, restore=False)
        ledger.secure(list(in_flight))
        for batch_key, batch in in_flight.items():
            self._spilled_in_flight[batch_key] = [e.record for e in batch]
        self.spilled_total += len(entries)
        self._this_fence += len(entries)
        ledger.answer_flushes()
        return len(entries)

    def store_answered(self, key: int, ok: bool) -> None:
        """The write of a transit batch returned; if a fence had spilled it and it was
        stored, its spilled copies need no replay."""
        records = self._spilled_in_flight.pop(key, None)
        if records is not None and ok:
            self._stored.update((r.run_id, r) for r in records)

    def unstored(self, records: list[RunRecord]) -> list[RunRecord]:
        """``records`` read back from the spill file, less those already stored."""
        if not self._stored:
            return records
        return [r for r in records if self._stored.get(r.run_id) != r]

    def replayed(self, records: list[RunRecord]) -> None:
        """``records`` left the spill file: no need to remember them any more."""
        if self._stored:
            for record in records:
                if self._stored.get(record.run_id) == record:
                    del self._stored[record.run_id]

    def began(self, spilled: int, held: int, path: Path) -> None:
        """``held``: records still in memory (the spill file refused them)."""
        self.fenced = True
        self._this_fence = spilled
        kept = f" ({held} kept in memory: the spill file refused them)" if held else ""
        log.warning("fenced: %d run records spilled to %s%s; until the session is back, "
                    "every run record is spilled as it comes", spilled, path, kept)

    def ended(self, lease_id: int) -> None:
        self.fenced = False
        log.info("session back on lease %#x: %d run records were spilled while fenced "
                 "(replayed once the store takes them)", lease_id, self._this_fence)
