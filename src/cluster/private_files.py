"""Files and directories only this process's user can read: made so, and checked so.

Why: the state directory holds the run store (job output), the spill files (run
records the worker will write to the store as its own) and, for ``make run``, the API
token. A directory another local user can write lets them plant a file we would read
(a forged spill record, a symlink to a root-only file); a file they can read leaks
job output. So every directory we create is 0700 and every file 0600 *at creation*
(a chmod afterwards leaves a window in which another user can open it and keep the
fd), and a directory we are handed is refused unless it is ours and nobody else can
write it.

``restrict_umask`` sets the process umask to 0o077 at the start of the master's and
the worker's main: then every file any library creates for us (SQLite's ``-wal`` and
``-shm``, a log file) is private too, even where we cannot pass a mode. Job processes
must not inherit it (a job's files are the job's business): the worker gives them
``original_umask()`` back (``worker.executor.spawn``).

Errors (one line each, for a start-up message and exit code 2)::

    UnsafeDirectory             exists, but is not ours or others can write it
    CannotMakeDirectory         missing and cannot be created
"""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

__all__ = ["CannotMakeDirectory", "UnsafeDirectory", "check_private_dir",
           "create_private_file", "ensure_private_dir", "make_private_dirs",
           "original_umask", "restrict_umask"]

PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600

_original_umask: int | None = None


class UnsafeDirectory(Exception):
    """A directory we would keep private files in is not private to us."""

    def __init__(self, what: str, path: Path, uid: int, mode: int, need: str) -> None:
        self.path, self.uid, self.mode = path, uid, mode
        me = _user_name(os.geteuid())
        super().__init__(
            f"{what} {path} is owned by {_user_name(uid)} with mode {mode:04o}; it must be "
            f"owned by {me} {need}: run 'chown {me} {path} && chmod 0700 {path}', "
            f"or choose another directory")


class CannotMakeDirectory(OSError):
    """A private directory we need is missing and cannot be created (or is no dir).
    An OSError, so that code handling file errors handles this one too."""

    def __init__(self, what: str, path: Path, reason: str) -> None:
        self.path = path
        super().__init__(f"cannot create {what} {path}: {reason}")

    def __str__(self) -> str:
        return str(self.args[0])


def restrict_umask() -> int:
    """Set the umask to 0o077 (idempotent) and return the one the process started with."""
    global _original_umask
    previous = os.umask(PRIVATE_UMASK)
    if _original_umask is None:
        _original_umask = previous
    return _original_umask


def original_umask() -> int:
    """The umask before ``restrict_umask``, for child processes; -1 (Popen's "leave
    it alone") if it was never restricted, as in tests that run actors in-process."""
    return -1 if _original_umask is None else _original_umask


def make_private_dirs(path: Path, what: str = "directory") -> None:
    """``mkdir -p`` where each directory created is 0700 from its creation (whatever
    the umask: it can only remove bits, and the owner's are never in ours)."""
    path = Path(path)
    missing: list[Path] = []
    for p in (path, *path.parents):
        if os.path.lexists(p):
            break
        missing.append(p)
    for p in reversed(missing):
        try:
            os.mkdir(p, DIR_MODE)
        except FileExistsError:
            pass  # another process made it meanwhile: checked like any existing dir
        except OSError as exc:
            raise CannotMakeDirectory(what, path, exc.strerror or str(exc)) from None


def check_private_dir(path: Path, what: str = "directory", *, exact: bool = False) -> None:
    """Raise UnsafeDirectory unless ``path`` is a directory owned by our effective user
    that no one else can write (``exact``: whose mode is exactly 0700)."""
    try:
        st = os.stat(path)  # the operator may point us through a symlink; its target counts
    except OSError as exc:
        raise CannotMakeDirectory(what, Path(path), exc.strerror or str(exc)) from None
    if not stat.S_ISDIR(st.st_mode):
        raise CannotMakeDirectory(what, Path(path), "it exists and is not a directory")
    mode = stat.S_IMODE(st.st_mode)
    ours = st.st_uid == os.geteuid()
    if exact and (not ours or mode != DIR_MODE):
        raise UnsafeDirectory(what, Path(path), st.st_uid, mode, "with mode 0700")
    if not ours or mode & 0o022:
        raise UnsafeDirectory(what, Path(path), st.st_uid, mode,
                              "and not be writable by group or others")


def ensure_private_dir(path: Path, what: str = "directory", *, exact: bool = False) -> None:
    """Create ``path`` (0700) if missing, then ``check_private_dir`` it."""
    make_private_dirs(path, what)
    check_private_dir(path, what, exact=exact)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless something exists there (O_EXCL: not
    even a dangling symlink is followed); what exists is left as it is."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
