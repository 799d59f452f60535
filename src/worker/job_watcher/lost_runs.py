"""Telling a lost run from an ended one: pair its deletion with its worker's.

When a worker's lease expires etcd deletes its ``workers/<id>`` key and its
``running/…`` keys in one revision R. Another worker's run deleted at R is therefore
lost iff that worker's key was deleted at R too: a run that ends deletes its key at a
revision of its own while its worker lives, and a graceful shutdown deletes the
running keys of the runs it recorded before revoking the lease (it leaves only those
it left for another worker to run, still ``claimed``). The two deletions arrive on
different streams in either order; ``LostRunMatcher`` keeps each side a while for the
other.
"""

from __future__ import annotations

from cluster.presence import RunningInfo

LOST_MATCH_WINDOW_S = 10.0  # how long one half of a lost run waits for the other


class LostRunMatcher:
    """Pairs deletions of running keys with deletions of worker keys at one revision.

    Synchronous, and ``now`` (trio clock) is passed in, so it can be tested alone.
    Each side waits ``window_s`` for the other, then is forgotten. A worker's deletion
    stays until it expires, because all of its runs share its revision and may come
    after it; a run's deletion leaves once matched, so each run is reported once.
    """

    def __init__(self, window_s: float = LOST_MATCH_WINDOW_S) -> None:
        self._window_s = window_s
        # Invariant: insertion order is time order (now never decreases), so expiry
        # pops from the front.
        self._runs: dict[int, tuple[float, list[RunningInfo]]] = {}  # revision → (seen, runs)
        self._workers: dict[tuple[str, int], float] = {}  # (worker id, revision) → seen

    def run_deleted(self, info: RunningInfo, revision: int, now: float) -> bool:
        """True if the run is lost: its worker's key went at the same revision."""
        self._expire(now)
        if (info.worker_id, revision) in self._workers:
            return True
        self._runs.setdefault(revision, (now, []))[1].append(info)
        return False

    def worker_deleted(self, worker_id: str, revision: int, now: float) -> list[RunningInfo]:
        """The runs already seen deleted at ``revision`` with this worker: all lost."""
        self._expire(now)
        self._workers[(worker_id, revision)] = now
        seen, runs = self._runs.get(revision, (now, []))
        lost = [run for run in runs if run.worker_id == worker_id]
        rest = [run for run in runs if run.worker_id != worker_id]
        if rest:
            self._runs[revision] = (seen, rest)  # keeps its place in the order
        else:
            self._runs.pop(revision, None)
        return lost

    def pending(self) -> int:
        """Deletions waiting for their other half."""
        return sum(len(runs) for _, runs in self._runs.values()) + len(self._workers)

    def _expire(self, now: float) -> None:
        horizon = now - self._window_s
        while self._runs and next(iter(self._runs.values()))[0] <= horizon:
            del self._runs[next(iter(self._runs))]
        while self._workers and next(iter(self._workers.values())) <= horizon:
            del self._workers[next(iter(self._workers))]
