"""The LogSink's files on local disk: the spill file, and the file of rejected records.

Spill file ``<spill_dir>/<worker_id>.jsonl``: run records the store could not take yet,
one ``RunRecord.to_json()`` per line, in the order they were spilled. Appends are
fsync'd before they count as durable; replay reads from a committed offset, and the
file is truncated once every line has been replayed, so it never holds a record twice
except after a crash (replay upserts on run_id: a second copy is harmless).

Ownership: a live SpillFile holds an exclusive ``flock`` on its file. At open it also
*adopts* orphans: any other ``*.jsonl`` spill file in the directory that nobody holds
(its worker died, or restarted under a new id: the default id contains the pid). Their
lines are appended to ours (fsync), then the orphan is deleted; so records left by a
previous process are replayed whether or not the worker id is stable. ``spill_dir``
must be a local file system (flock on NFS is not to be trusted).

A torn last line (a crash in the middle of an append: those records had not been
reported durable) is cut off and kept in the rejected file, never silently dropped.

Rejected file ``<spill_dir>/<worker_id>.rejected.jsonl``: records the store refused
for good, and spill lines that cannot be read back, each with the reason; fsync'd,
counted, logged at ERROR, for an operator to inspect or re-import.

Errors::

    SpillError                  base: the spill directory failed us (disk full, I/O, rights)
    ├── SpillFileBusy           another live process holds this worker's spill file:
    │                           two workers share one id and one spill_dir
    └── SpillIOError            a file operation failed; nothing was marked durable
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import trio

from cluster.store import RunRecord

from .clock import WallClock

log = logging.getLogger(__name__)

SPILL_SUFFIX = ".jsonl"
REJECTED_SUFFIX = ".rejected.jsonl"
_COPY_CHUNK_BYTES = 1 << 20
_REASON_LOG_CHARS = 300
_BUSY_TRIES = 40  # x _BUSY_WAIT_S: how long an adopter may hold our file
_BUSY_WAIT_S = 0.05
T = TypeVar("T")


class SpillError(Exception):
    """Base class: the LogSink's local files failed us."""


class SpillFileBusy(SpillError):
    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"spill file {path} is held by another live process: "
                         "two workers share one worker id and spill_dir")


class SpillIOError(SpillError):
    def __init__(self, path: Path, action: str, error: OSError) -> None:
        self.path = path
        self.action = action
        super().__init__(f"spill file {path}: {action} failed: {error}")


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record the store refused for good, or a spill line that cannot be read back."""

    reason: str
    record: RunRecord | None = None
    line: str | None = None


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

    def __init__(self, path: Path, fd: int, rejected: _RejectedFile) -> None:
        self.path = path
        self._fd = fd
        self._rejected = rejected
        self._limiter = trio.CapacityLimiter(1)
        # Invariant: bytes [0, _size) hold whole lines, [_offset, _size) not yet replayed.
        self._size = os.fstat(fd).st_size
        self._offset = 0
        self._pending = _count_lines(fd, self._size)
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
        path = spill_dir / f"{worker_id}{SPILL_SUFFIX}"
        try:
            spill_dir.mkdir(parents=True, exist_ok=True)
            fd = _lock(path, create=True)
        except OSError as exc:
            raise SpillIOError(path, "open", exc) from exc
        assert fd is not None  # create=True: raises rather than return None
        try:
            torn, adopted = [_cut_torn_tail(fd, path)], []
            for orphan in _orphans(spill_dir, path):
                if (ofd := _lock(orphan, create=False)) is not None:
                    torn.append(_move_lines(orphan, ofd, fd))
                    adopted.append(orphan)
            spill = cls(path, fd, _RejectedFile(spill_dir / f"{worker_id}{REJECTED_SUFFIX}", clock))
        except OSError as exc:
            os.close(fd)
            raise SpillIOError(path, "recovery", exc) from exc
        spill.adopted = tuple(adopted)
        try:
            spill._reject_sync([Rejection("torn last line of a spill file (crash mid-append)",
                                          line=t) for t in torn if t])
        except SpillError:
            spill._close_sync()
            raise
        return spill

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
        data = "".join(json.dumps(r.to_json(), separators=(",", ":")) + "\n"
                       for r in records).encode("ascii")  # ensure_ascii: always ASCII
        try:
            _pwrite_all(self._fd, data, self._size)
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
                    _parse_line(raw, records, unreadable)
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
                    self.path.unlink()
        finally:
            os.close(self._fd)
            self._rejected.close()


class _RejectedFile:
    """Append-only, opened on first use (most workers never reject anything)."""

    def __init__(self, path: Path, clock: WallClock) -> None:
        self.path = path
        self._clock = clock
        self._fd: int | None = None

    def append(self, rejections: Sequence[Rejection]) -> None:
        now_ms = self._clock.now_ms()
        data = "".join(json.dumps(_rejection_json(r, now_ms), separators=(",", ":")) + "\n"
                       for r in rejections).encode("ascii")
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT
                                   | os.O_CLOEXEC, 0o600)
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


def _parse_line(raw: bytes, records: list[RunRecord], unreadable: list[Rejection]) -> None:
    try:
        records.append(RunRecord.from_json(json.loads(raw)))
    except (ValueError, TypeError, KeyError) as exc:  # bad JSON, or not a run record
        unreadable.append(Rejection(f"unreadable spill line: {exc}",
                                    line=raw.decode("utf-8", "backslashreplace")))


def _lock(path: Path, *, create: bool) -> int | None:
    """An fd of ``path`` holding its exclusive flock, or None (held, or gone).

    Retries if the file was deleted and re-created between our open and our lock: a
    lock on an inode that is no longer at ``path`` protects nothing. Our own file
    (``create``) may be held for a moment by a peer adopting it as an orphan: wait for
    that, then raise SpillFileBusy.
    """
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    busy_tries = _BUSY_TRIES
    while True:
        try:
            fd = os.open(path, flags, 0o600)
        except FileNotFoundError:
            if create:
                raise
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if not create:
                return None
            busy_tries -= 1
            if busy_tries == 0:
                raise SpillFileBusy(path) from None
            time.sleep(_BUSY_WAIT_S)  # in a worker thread
            continue
        if _same_file(fd, path):
            return fd
        os.close(fd)
        if not create:
            return None


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_ino, on_disk.st_dev) == (held.st_ino, held.st_dev)


def _orphans(spill_dir: Path, own: Path) -> list[Path]:
    return sorted(p for p in spill_dir.glob(f"*{SPILL_SUFFIX}")
                  if p != own and not p.name.endswith(REJECTED_SUFFIX))


def _move_lines(orphan: Path, ofd: int, fd: int) -> str | None:
    """Append a locked orphan's lines to our file (``fd``, fsync'd), then delete it.
    Returns the orphan's torn last line, if it had one."""
    try:
        torn = _cut_torn_tail(ofd, orphan)
        end = os.fstat(fd).st_size
        pos = 0
        while chunk := os.pread(ofd, _COPY_CHUNK_BYTES, pos):
            _pwrite_all(fd, chunk, end + pos)
            pos += len(chunk)
        os.fsync(fd)
        orphan.unlink()  # a crash before this: both files hold the lines (upserts: harmless)
    finally:
        os.close(ofd)
    log.warning("adopted orphan spill file %s (%d bytes)", orphan, pos)
    return torn


def _cut_torn_tail(fd: int, path: Path) -> str | None:
    """Cut a last line that lacks its newline; return it (decoded) or None."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return None
    end = size
    while end > 0:  # find the last newline, scanning back a chunk at a time
        start = max(0, end - _COPY_CHUNK_BYTES)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            end = start + newline + 1
            break
        end = start
    fragment = os.pread(fd, size - end, end)
    os.ftruncate(fd, end)
    os.fsync(fd)
    log.warning("spill file %s: cut a torn last line of %d bytes", path, len(fragment))
    return fragment.decode("utf-8", "backslashreplace")


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def _count_lines(fd: int, size: int) -> int:
    lines, pos = 0, 0
    while pos < size:
        chunk = os.pread(fd, min(_COPY_CHUNK_BYTES, size - pos), pos)
        lines += chunk.count(b"\n")
        pos += len(chunk)
    return lines
