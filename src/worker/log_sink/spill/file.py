"""The spill file ``<spill_dir>/<worker_id>.jsonl``: run records the store could not take
yet, in the order they were spilled (format: ``lines``).

Appends are fsync'd before they count as durable; replay reads from a committed
offset, and the file is truncated once every line has been replayed, so it never holds
a record twice except after a crash (replay upserts on run_id: a second copy is
harmless). Opening it locks it and adopts orphans (``ownership``), through checked fds
only (``trust``); a torn last line, ours or an orphan's, goes to the rejected file
(``rejected``), as do lines that cannot be read back.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import trio

from cluster.store import RunRecord

from worker.clock import WallClock
from .errors import SpillError, SpillIOError
from .lines import count_lines, cut_torn_tail, encode_lines, parse_line, pwrite_all
from .ownership import lock, move_lines, orphans
from .rejected import Rejection, RejectedFile
from .trust import REJECTED_SUFFIX, SPILL_SUFFIX, open_dir

log = logging.getLogger(__name__)

_REASON_LOG_CHARS = 300
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReplayBatch:
    """The oldest unreplayed lines; ``commit`` it once ``records`` are in the store."""

    records: list[RunRecord]
    unreadable: list[Rejection]
    lines: int  # lines consumed, readable or not
    end_offset: int


class SpillFile:
    """One worker's spill file, locked for the life of this object. Made by ``open``.

    Every file operation runs in a worker thread under one CapacityLimiter(1), so
    appends, reads and truncation never overlap, and a cancelled caller waits for its
    thread (a half-done append is never mistaken for a durable one).
    """

    def __init__(self, path: Path, dir_fd: int, fd: int, rejected: RejectedFile) -> None:
        self.path = path
        self._dir_fd = dir_fd  # every name below is resolved in this directory
        self._fd = fd
        self._rejected = rejected
        self._limiter = trio.CapacityLimiter(1)
        # Invariant: bytes [0, _size) hold whole lines, [_offset, _size) not yet replayed.
        self._size = os.fstat(fd).st_size
        self._offset = 0
        self._pending = count_lines(fd, self._size)
        self.rejected_total = 0
        self.adopted: tuple[Path, ...] = ()
        self._closed = False

    @classmethod
    async def open(cls, spill_dir: Path, worker_id: str, clock: WallClock) -> SpillFile:
        """Lock this worker's file (creating it), repair a torn tail, adopt orphans."""
        spill = await trio.to_thread.run_sync(cls._open_sync, spill_dir, worker_id, clock)
        if spill.pending:
            log.warning("spill file %s holds %d run records from earlier processes%s; "
                        "replaying them", spill.path, spill.pending,
                        f" (adopted {len(spill.adopted)} orphan files)" if spill.adopted else "")
        return spill

    @classmethod
    def _open_sync(cls, spill_dir: Path, worker_id: str, clock: WallClock) -> SpillFile:
        dir_fd = open_dir(spill_dir)
        try:
            spill, torn = cls._open_in(spill_dir, dir_fd, worker_id, clock)
        except BaseException:
            os.close(dir_fd)  # the SpillFile was not made: nobody else closes it
            raise
        try:
            spill._reject_sync([Rejection("torn last line of a spill file (crash mid-append)",
                                          line=t) for t in torn if t])
        except SpillError:
            spill._close_sync()
            raise
        return spill

    @classmethod
    def _open_in(cls, spill_dir: Path, dir_fd: int, worker_id: str,
                 clock: WallClock) -> tuple[SpillFile, list[str | None]]:
        """Our file locked and repaired, orphans adopted; with their torn tails."""
        name = f"{worker_id}{SPILL_SUFFIX}"
        path = spill_dir / name
        try:
            fd = lock(dir_fd, path, create=True)
        except OSError as exc:
            raise SpillIOError(path, "open", exc) from exc
        assert fd is not None  # create=True: raises rather than return None
        try:
            torn, adopted = [cut_torn_tail(fd, path)], []
            for orphan in orphans(dir_fd, name):
                if (ofd := lock(dir_fd, spill_dir / orphan, create=False)) is not None:
                    torn.append(move_lines(dir_fd, spill_dir / orphan, ofd, fd))
                    adopted.append(spill_dir / orphan)
            rejected = RejectedFile(spill_dir / f"{worker_id}{REJECTED_SUFFIX}", dir_fd, clock)
            spill = cls(path, dir_fd, fd, rejected)
        except OSError as exc:
            os.close(fd)
            raise SpillIOError(path, "recovery", exc) from exc
        spill.adopted = tuple(adopted)
        return spill, torn

    @property
    def pending(self) -> int:
        """Records in the file not replayed yet."""
        return self._pending

    async def append(self, records: Sequence[RunRecord]) -> None:
        """Append and fsync: once this returns, the records survive a crash."""
        await self._run(functools.partial(self._append_sync, records))

    async def read_batch(self, max_records: int) -> ReplayBatch:
        """The oldest ``max_records`` unreplayed lines; reading changes nothing."""
        return await self._run(functools.partial(self._read_sync, max_records))

    async def commit(self, batch: ReplayBatch) -> None:
        """``batch`` is in the store: reject its unreadable lines, move past it, and
        truncate the file once everything in it was replayed."""
        if batch.unreadable:
            await self.reject(batch.unreadable)
        await self._run(functools.partial(self._commit_sync, batch))

    async def reject(self, rejections: Sequence[Rejection]) -> None:
        """Keep ``rejections`` in the rejected file (fsync'd), count and log them."""
        await self._run(functools.partial(self._reject_sync, rejections))

    def close(self) -> None:
        """Release the lock; delete the file if it is empty. Idempotent.

        Synchronous on purpose (an unlink and a close, no fsync): it must run even when
        the caller's cleanup time is up, or the lock would outlive this SpillFile and
        the next incarnation in this process would find its own file busy. Call it only
        when no operation is in flight (they are never abandoned, so: after they return).
        """
        self._close_sync()

    # -- in the worker thread ------------------------------------------------------

    async def _run(self, fn: Callable[[], T]) -> T:
        return await trio.to_thread.run_sync(fn, limiter=self._limiter)

    def _append_sync(self, records: Sequence[RunRecord]) -> None:
        data = encode_lines(records)
        try:
            pwrite_all(self._fd, data, self._size)
            os.fsync(self._fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)  # drop the partial append
            raise SpillIOError(self.path, "append", exc) from exc
        self._size += len(data)
        self._pending += len(records)

    def _read_sync(self, max_records: int) -> ReplayBatch:
        records: list[RunRecord] = []
        unreadable: list[Rejection] = []
        pos, lines = self._offset, 0
        try:
            with os.fdopen(os.dup(self._fd), "rb") as f:
                f.seek(pos)
                while lines < max_records and pos < self._size:
                    raw = f.readline()
                    pos, lines = pos + len(raw), lines + 1
                    parse_line(raw, records, unreadable)
        except OSError as exc:
            raise SpillIOError(self.path, "read", exc) from exc
        return ReplayBatch(records, unreadable, lines, pos)

    def _commit_sync(self, batch: ReplayBatch) -> None:
        self._offset = batch.end_offset
        self._pending -= batch.lines
        if self._offset < self._size:
            return
        try:
            os.ftruncate(self._fd, 0)
            os.fsync(self._fd)
        except OSError as exc:  # the offset still protects us; the next commit retries
            log.warning("spill file %s: truncate failed (%s)", self.path, exc)
            return
        self._size = self._offset = 0

    def _reject_sync(self, rejections: Sequence[Rejection]) -> None:
        if not rejections:
            return
        self._rejected.append(rejections)
        self.rejected_total += len(rejections)
        for r in rejections:
            log.error("run record %s rejected for good, kept in %s: %.*s",
                      r.record.run_id if r.record else "(unreadable spill line)",
                      self._rejected.path, _REASON_LOG_CHARS, r.reason)

    def _close_sync(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._size == 0:
                # Deleted while we hold the lock: an adopter that opened it meanwhile
                # sees the inode gone from the path and leaves it alone (see _lock).
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path.name, dir_fd=self._dir_fd)
        finally:
            os.close(self._fd)
            self._rejected.close()
            os.close(self._dir_fd)
