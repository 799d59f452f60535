"""The LogSink's files on local disk: the spill file, and the file of rejected records.

Spill file ``<spill_dir>/<worker_id>.jsonl``: run records the store could not take yet,
one ``RunRecord.to_json()`` per line, in the order they were spilled. Appends are
fsync'd before they count as durable; replay reads from a committed offset, and the
file is truncated once every line has been replayed, so it never holds a record twice
except after a crash (replay upserts on run_id: a second copy is harmless).

Ownership: a live SpillFile holds an exclusive ``flock`` on its file. At open it also
*adopts* orphans: any other spill file in the directory that nobody holds (its worker
died, or restarted under a new id: the default id contains the pid). Their lines are
appended to ours (fsync), then the orphan is deleted; so records left by a previous
process are replayed whether or not the worker id is stable. ``spill_dir`` must be a
local file system (flock on NFS is not to be trusted).

Trust: what is replayed is written to the store as the worker's own records, so a
file another user could plant or redirect must never be read. Hence:

- the directory must be owned by our effective user with mode exactly 0700 (created
  so if missing; ``SpillDirUnsafe`` otherwise), and every file operation goes through
  one fd of it, so the directory checked is the directory used;
- every file is opened with ``O_NOFOLLOW`` (a symlink is never followed, so never
  read nor truncated through), created with mode 0600 by ``open`` itself, then
  ``fstat``-checked: only regular files owned by our effective user are used;
- only names of the worker's own pattern, ``<valid worker id>.jsonl``, are adopted.
  Any other entry, and any such name that fails the checks above, is left alone with
  a warning naming it (never read, truncated or deleted). Our own file or rejected
  file failing them is ``SpillFileUnsafe``: the sink cannot start until it is removed.

A torn last line (a crash in the middle of an append: those records had not been
reported durable) is cut off and kept in the rejected file, never silently dropped.

Rejected file ``<spill_dir>/<worker_id>.rejected.jsonl``: records the store refused
for good, and spill lines that cannot be read back, each with the reason; fsync'd,
counted, logged at ERROR, for an operator to inspect or re-import.

Errors::

    SpillError                  base: the spill directory failed us (disk full, I/O, rights)
    ├── SpillFileBusy           another live process holds this worker's spill file:
    │                           two workers share one id and one spill_dir
    ├── SpillDirUnsafe          the directory is not ours with mode 0700
    ├── SpillFileUnsafe         our own file's name is a symlink, or not our regular file
    └── SpillIOError            a file operation failed; nothing was marked durable
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import logging
import os
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import trio

from cluster.config._checks import worker_id as _worker_id_problem
from cluster.private_files import (
    FILE_MODE,
    UnsafeDirectory,
    make_private_dirs,
)
from cluster.store import RunRecord

from worker.clock import WallClock

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


class SpillDirUnsafe(SpillError):
    def __init__(self, path: Path, uid: int, mode: int) -> None:
        self.path = path
        super().__init__(str(UnsafeDirectory("spill directory", path, uid, mode,
                                             "with mode 0700")))


class SpillFileUnsafe(SpillError):
    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        super().__init__(f"spill file {path} {reason}: a worker uses only regular files "
                         "of its own user there; move it away")


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

    def __init__(self, path: Path, dir_fd: int, fd: int, rejected: _RejectedFile) -> None:
        self.path = path
        self._dir_fd = dir_fd  # every name below is resolved in this directory
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
        dir_fd = _open_dir(spill_dir)
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
            fd = _lock(dir_fd, path, create=True)
        except OSError as exc:
            raise SpillIOError(path, "open", exc) from exc
        assert fd is not None  # create=True: raises rather than return None
        try:
            torn, adopted = [_cut_torn_tail(fd, path)], []
            for orphan in _orphans(dir_fd, name):
                if (ofd := _lock(dir_fd, spill_dir / orphan, create=False)) is not None:
                    torn.append(_move_lines(dir_fd, spill_dir / orphan, ofd, fd))
                    adopted.append(spill_dir / orphan)
            rejected = _RejectedFile(spill_dir / f"{worker_id}{REJECTED_SUFFIX}", dir_fd, clock)
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
                    os.unlink(self.path.name, dir_fd=self._dir_fd)
        finally:
            os.close(self._fd)
            self._rejected.close()
            os.close(self._dir_fd)


class _RejectedFile:
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
                self._fd = _open_own(self._dir_fd, self.path,
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


def _parse_line(raw: bytes, records: list[RunRecord], unreadable: list[Rejection]) -> None:
    try:
        records.append(RunRecord.from_json(json.loads(raw)))
    except (ValueError, TypeError, KeyError) as exc:  # bad JSON, or not a run record
        unreadable.append(Rejection(f"unreadable spill line: {exc}",
                                    line=raw.decode("utf-8", "backslashreplace")))


def _open_dir(spill_dir: Path) -> int:
    """An fd of the spill directory (made 0700 if missing), checked to be ours, 0700."""
    try:
        make_private_dirs(spill_dir, "spill directory")
        dir_fd = os.open(spill_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:  # CannotMakeDirectory included
        raise SpillIOError(spill_dir, "open directory", exc) from None
    st = os.fstat(dir_fd)
    if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) != 0o700:
        os.close(dir_fd)
        raise SpillDirUnsafe(spill_dir, st.st_uid, stat.S_IMODE(st.st_mode))
    return dir_fd


def _open_own(dir_fd: int, path: Path, flags: int) -> int:
    """Open ``path``'s name in ``dir_fd``, never through a symlink (created 0600), and
    only if it is a regular file owned by us; else SpillFileUnsafe (our own files)."""
    try:
        fd = os.open(path.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE,
                     dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SpillFileUnsafe(path, "is a symbolic link") from None
        raise
    if (reason := _not_ours(os.fstat(fd))) is not None:
        os.close(fd)
        raise SpillFileUnsafe(path, reason)
    return fd


def check_own_files(spill_dir: Path, worker_id: str) -> None:
    """Raise SpillFileUnsafe if this worker's spill or rejected file exists and is not
    a regular file of ours: for the start-up check (a clear exit 2), where the sink
    would otherwise fail at its start. The sink checks again, on the fds it opens."""
    for suffix in (SPILL_SUFFIX, REJECTED_SUFFIX):
        path = spill_dir / f"{worker_id}{suffix}"
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode):
            raise SpillFileUnsafe(path, "is a symbolic link")
        if (reason := _not_ours(st)) is not None:
            raise SpillFileUnsafe(path, reason)


def _not_ours(st: os.stat_result) -> str | None:
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if st.st_uid != os.geteuid():
        return f"is owned by uid {st.st_uid}, not by us (uid {os.geteuid()})"
    return None


def _lock(dir_fd: int, path: Path, *, create: bool) -> int | None:
    """An fd of ``path`` (a name in ``dir_fd``) holding its exclusive flock, or None
    (held, gone, or, for an orphan, not our regular file: skipped with a warning).

    Retries if the file was deleted and re-created between our open and our lock: a
    lock on an inode that is no longer at ``path`` protects nothing. Our own file
    (``create``) may be held for a moment by a peer adopting it as an orphan: wait for
    that, then raise SpillFileBusy.
    """
    flags = os.O_RDWR | (os.O_CREAT if create else 0)
    busy_tries = _BUSY_TRIES
    while True:
        try:
            fd = _open_own(dir_fd, path, flags)
        except FileNotFoundError:
            if create:
                raise
            return None
        except SpillFileUnsafe as exc:
            if create:
                raise
            log.warning("not adopting %s", exc)
            return None
        except OSError as exc:  # a directory (EISDIR), unreadable: not a spill file
            if create:
                raise
            log.warning("not adopting %s: %s", path, exc.strerror or exc)
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
        if _same_file(fd, dir_fd, path):
            return fd
        os.close(fd)
        if not create:
            return None


def _same_file(fd: int, dir_fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path.name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_ino, on_disk.st_dev) == (held.st_ino, held.st_dev)


def is_spill_name(name: str) -> bool:
    """``<valid worker id>.jsonl``, and not a rejected file: a name a worker spills to."""
    return (name.endswith(SPILL_SUFFIX) and not name.endswith(REJECTED_SUFFIX)
            and _worker_id_problem(name[:-len(SPILL_SUFFIX)]) is None)


def _orphans(dir_fd: int, own: str) -> list[str]:
    """Names in the directory to adopt; any other entry is left alone, with a warning
    unless it is a rejected file (ours to keep, for the operator)."""
    names = []
    for name in sorted(os.listdir(dir_fd)):
        if name == own or name.endswith(REJECTED_SUFFIX):
            continue
        if is_spill_name(name):
            names.append(name)
        else:
            log.warning("spill directory: ignoring %r, not a spill file name "
                        "(<worker id>%s)", name, SPILL_SUFFIX)
    return names


def _move_lines(dir_fd: int, orphan: Path, ofd: int, fd: int) -> str | None:
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
        # A crash before this: both files hold the lines (upserts: harmless).
        os.unlink(orphan.name, dir_fd=dir_fd)
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
