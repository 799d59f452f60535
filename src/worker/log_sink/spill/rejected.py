"""The rejected file ``<spill_dir>/<worker_id>.rejected.jsonl``: records the store
refused for good, and spill lines that cannot be read back, each with the reason and
the time; fsync'd, for an operator to inspect or re-import. Never read by the worker.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cluster.store import RunRecord

from worker.clock import WallClock
from .errors import SpillIOError
from .trust import open_own


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record the store refused for good, or a spill line that cannot be read back."""

    reason: str
    record: RunRecord | None = None
    line: str | None = None


class RejectedFile:
    """Append-only, opened on first use (most workers never reject anything)."""

    def __init__(self, path: Path, dir_fd: int, clock: WallClock) -> None:
        self.path = path
        self._dir_fd = dir_fd  # borrowed from the SpillFile, which closes it
        self._clock = clock
        self._fd: int | None = None

    def append(self, rejections: Sequence[Rejection]) -> None:
        now_ms = self._clock.now_ms()
        data = "".join(json.dumps(_rejection_json(r, now_ms), separators=(",", ":")) + "\n"
                       for r in rejections).encode("ascii")
        try:
            if self._fd is None:
                self._fd = open_own(self._dir_fd, self.path,
                                    os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            os.fsync(self._fd)
        except OSError as exc:
            raise SpillIOError(self.path, "reject", exc) from exc

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _rejection_json(r: Rejection, now_ms: int) -> dict[str, object]:
    entry: dict[str, object] = {"reason": r.reason, "rejectedAt": now_ms}
    if r.record is not None:
        entry["record"] = r.record.to_json()
    if r.line is not None:
        entry["line"] = r.line
    return entry
