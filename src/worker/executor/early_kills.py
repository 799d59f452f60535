"""Kills that reach the Executor before the run they name.

A run's key is in etcd (``running/``, state ``claimed``) as soon as its claim is
granted, so an operator, or the master's API, can name it in a kill at once; but the
run reaches the Executor only after the claim's answer went Locker -> Scheduler ->
Executor, while the kill comes JobWatcher -> Executor. The two paths have no common
order, and under load the kill can win by seconds. Such a kill is remembered here,
and the run is stopped before it starts when it arrives (found by CI: a kill sent
right after a run appeared in ``running`` was dropped and the run went on).

Bounded: the newest ``MAX_KILLS`` kills, each for ``KEEP_S`` at most. A run id is
unique and a run arrives within seconds of its claim, so an older kill names a run
that will not come (it ran elsewhere, or ended).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from cluster.store import RunStatus

__all__ = ["EarlyKill", "EarlyKills"]

MAX_KILLS = 1024
KEEP_S = 60.0


@dataclass(frozen=True)
class EarlyKill:
    status: RunStatus
    reason: str


class EarlyKills:
    """Kills by run id, kept for runs the Executor has not seen yet."""

    def __init__(self, *, max_kills: int = MAX_KILLS, keep_s: float = KEEP_S) -> None:
        self._max_kills = max_kills
        self._keep_s = keep_s
        # run id -> (when it came, on the caller's clock in seconds, the kill); oldest first
        self._kills: OrderedDict[str, tuple[float, EarlyKill]] = OrderedDict()

    def remember(self, run_id: str, kill: EarlyKill, now_s: float) -> None:
        self._kills.pop(run_id, None)
        self._kills[run_id] = (now_s, kill)
        while len(self._kills) > self._max_kills:
            self._kills.popitem(last=False)

    def take(self, run_id: str, now_s: float) -> EarlyKill | None:
        """The kill waiting for `run_id`, if one came within `keep_s` (it is forgotten)."""
        self._forget_older_than(now_s - self._keep_s)
        entry = self._kills.pop(run_id, None)
        return None if entry is None else entry[1]

    def __len__(self) -> int:
        return len(self._kills)

    def _forget_older_than(self, cutoff_s: float) -> None:
        while self._kills and next(iter(self._kills.values()))[0] < cutoff_s:
            self._kills.popitem(last=False)
