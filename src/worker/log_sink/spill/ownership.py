"""Ownership: which process may use a spill file, and adopting those left behind.

A live SpillFile holds an exclusive ``flock`` on its file (``lock``). At open it also
*adopts* orphans: any other spill file in the directory that nobody holds (its worker
died, or restarted under a new id: the default id contains the pid). Their lines are
appended to ours (fsync), then the orphan is deleted (``move_lines``); so records left
by a previous process are replayed whether or not the worker id is stable.
``spill_dir`` must be a local file system (flock on NFS is not to be trusted).

Everything here is synchronous: it runs in a worker thread.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path

from .errors import SpillFileBusy, SpillFileUnsafe
from .lines import COPY_CHUNK_BYTES, cut_torn_tail, pwrite_all
from .trust import REJECTED_SUFFIX, SPILL_SUFFIX, is_spill_name, open_own

log = logging.getLogger(__name__)

_BUSY_TRIES = 40  # x _BUSY_WAIT_S: how long an adopter may hold our file
_BUSY_WAIT_S = 0.05


def lock(dir_fd: int, path: Path, *, create: bool) -> int | None:
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
            fd = open_own(dir_fd, path, flags)
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


def orphans(dir_fd: int, own: str) -> list[str]:
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


def move_lines(dir_fd: int, orphan: Path, ofd: int, fd: int) -> str | None:
    """Append a locked orphan's lines to our file (``fd``, fsync'd), then delete it.
    Returns the orphan's torn last line, if it had one."""
    try:
        torn = cut_torn_tail(ofd, orphan)
        end = os.fstat(fd).st_size
        pos = 0
        while chunk := os.pread(ofd, COPY_CHUNK_BYTES, pos):
            pwrite_all(fd, chunk, end + pos)
            pos += len(chunk)
        os.fsync(fd)
        # A crash before this: both files hold the lines (upserts: harmless).
        os.unlink(orphan.name, dir_fd=dir_fd)
    finally:
        os.close(ofd)
    log.warning("adopted orphan spill file %s (%d bytes)", orphan, pos)
    return torn
