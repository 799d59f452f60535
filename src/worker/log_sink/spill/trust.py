"""Trust: what the LogSink replays is written to the store as the worker's own records,
so a file another user could plant or redirect must never be read. Hence:

- the directory must be owned by our effective user with mode exactly 0700 (created
  so if missing; ``SpillDirUnsafe`` otherwise), and every file operation goes through
  one fd of it, so the directory checked is the directory used (``open_dir``);
- every file is opened with ``O_NOFOLLOW`` (a symlink is never followed, so never
  read nor truncated through), created with mode 0600 by ``open`` itself, then
  ``fstat``-checked: only regular files owned by our effective user are used
  (``open_own``);
- only names of the worker's own pattern, ``<valid worker id>.jsonl``, are adopted
  (``is_spill_name``). Any other entry, and any such name that fails the checks
  above, is left alone with a warning naming it (never read, truncated or deleted).
  Our own file or rejected file failing them is ``SpillFileUnsafe``: the sink cannot
  start until it is removed (``check_own_files`` says so at the worker's start).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from cluster.config._checks import worker_id as _worker_id_problem
from cluster.private_files import FILE_MODE, make_private_dirs

from .errors import SpillDirUnsafe, SpillFileUnsafe, SpillIOError

SPILL_SUFFIX = ".jsonl"
REJECTED_SUFFIX = ".rejected.jsonl"


def open_dir(spill_dir: Path) -> int:
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


def open_own(dir_fd: int, path: Path, flags: int) -> int:
    """Open ``path``'s name in ``dir_fd``, never through a symlink (created 0600), and
    only if it is a regular file owned by us; else SpillFileUnsafe (our own files)."""
    try:
        fd = os.open(path.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE,
                     dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SpillFileUnsafe(path, "is a symbolic link") from None
        raise
    if (reason := not_ours(os.fstat(fd))) is not None:
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
        if (reason := not_ours(st)) is not None:
            raise SpillFileUnsafe(path, reason)


def not_ours(st: os.stat_result) -> str | None:
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if st.st_uid != os.geteuid():
        return f"is owned by uid {st.st_uid}, not by us (uid {os.geteuid()})"
    return None


def is_spill_name(name: str) -> bool:
    """``<valid worker id>.jsonl``, and not a rejected file: a name a worker spills to."""
    return (name.endswith(SPILL_SUFFIX) and not name.endswith(REJECTED_SUFFIX)
            and _worker_id_problem(name[:-len(SPILL_SUFFIX)]) is None)
