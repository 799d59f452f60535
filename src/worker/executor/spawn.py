"""bash spawned right in the event loop: its own session, its output pipes, its user.

The child starts a new session (``setsid``), so its pid is also its process-group id
(``process`` signals the whole group). Its stdout and stderr are pipes, non-blocking
(trio ``FdStream``s), both registered in an epoll of their own (``Child.pipes``, where
``process`` adds bash's pidfd: one fd to wait on for the output and the exit); a held
child (``start_at``) also gets the pipes of its word and its wait.

Who and where (``SpawnAs``, for ``run_as``): the child may start in another working
directory and, spawned as root, setgroups/setgid/setuid to a job's user before its
``exec``. Jobs get the umask the worker started with (``cluster.private_files``), not
the worker's private 077.

Errors::

    Exception
     └── ProcessError
          └── SpawnFailed ... the command could not be started (bash missing, EMFILE,
                              EAGAIN...); ``cause`` is the OSError
"""

from __future__ import annotations

import os
import select
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import trio

from cluster import private_files

from .start_at import HELD_FDS_ENV


class ProcessError(Exception):
    """Base of the errors of this module."""


class SpawnFailed(ProcessError):
    """The command could not be started at all."""

    def __init__(self, program: str, cause: OSError) -> None:
        reason = cause.strerror or str(cause)
        super().__init__(f"cannot start {program!r}: {reason} (errno {cause.errno})")
        self.program = program
        self.cause = cause


@dataclass(frozen=True, slots=True)
class SpawnAs:
    """Where the child starts, who it becomes before its ``exec``, what fds it inherits.

    ``uid`` None: the worker's own user (then ``gid`` and ``groups`` are ignored); else
    the child sets exactly ``groups`` as its supplementary groups, then ``gid``, then
    ``uid`` (never the worker's groups). ``pass_fds``: kept open in the child, same
    numbers; the caller closes its own copies after the spawn.
    """

    cwd: str | None = None  # None: the worker's
    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] = ()
    pass_fds: tuple[int, ...] = ()


AS_WORKER = SpawnAs()


class Child:
    """bash, spawned right in the event loop, with its two output pipes as trio streams.

    Why not ``trio.lowlevel.open_process``: it runs ``Popen`` in a worker thread, and the
    thread hand-off (plus the GIL) cost more than the spawn itself: measured on the
    2-core benchmark machine, 0.4-1.6 ms per spawn through the thread against 0.23 ms
    for ``Popen`` in the loop, which uses vfork and returns as soon as bash has exec'd
    (``benchmarks/BENCHMARKS.md``). The loop is held for that fraction of a millisecond
    only; a fire's lateness is mostly this spawn, so it pays.
    """

    def __init__(self, popen: subprocess.Popen, stdout: trio.lowlevel.FdStream,
                 stderr: trio.lowlevel.FdStream, writers: tuple[int, int],
                 commit_fd: int | None, pipes: select.epoll) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.stdout = stdout
        self.stderr = stderr
        # Our copies of the pipes' write ends, until bash has exited (close_writers): the
        # kernel closes bash's fds one by one before its pidfd says it exited, and each
        # hang-up would wake the reader on its own; held, they cannot come first.
        self.writers: tuple[int, ...] = writers
        # stdout and stderr registered (level-triggered, EPOLLIN), and then the pidfd
        # (``process``): one fd to wait on for all three. Made before the spawn, so that
        # an fd shortage is a SpawnFailed.
        self.pipes = pipes
        # The write end of a held child's stdin. Invariant: closed only by commit() or
        # after the child is reaped, never while it waits: EOF tells it we are gone.
        self.commit_fd = commit_fd

    @classmethod
    def spawn(cls, argv: Sequence[str], env: Mapping[str, str], *,
              held: bool = False, spawn_as: SpawnAs = AS_WORKER) -> "Child":
        fds: list[int] = []
        child_only: list[int] = []  # the child's ends: closed here once it has them
        commit_fd: int | None = None
        pipes: select.epoll | None = None
        try:
            out_read, out_write = os.pipe()
            fds += [out_read, out_write]
            err_read, err_write = os.pipe()
            fds += [err_read, err_write]
            pipes = select.epoll(2)
            pipes.register(out_read, select.EPOLLIN)
            pipes.register(err_read, select.EPOLLIN)
            stdin: int = subprocess.DEVNULL
            pass_fds: tuple[int, ...] = ()
            if held:
                # os.pipe() fds are not inheritable: no other child can hold commit_fd.
                stdin, commit_fd = os.pipe()
                fds += [stdin, commit_fd]
                wait_read, wait_write = os.pipe()
                fds += [wait_read, wait_write]
                child_only += [stdin, wait_read, wait_write]
                env = {**env, HELD_FDS_ENV: f"{wait_read} {wait_write}"}
                pass_fds = (wait_read, wait_write)
            popen = subprocess.Popen(
                list(argv), env=dict(env), start_new_session=True,
                stdin=stdin, stdout=out_write, stderr=err_write,
                pass_fds=pass_fds + spawn_as.pass_fds, cwd=spawn_as.cwd,
                umask=private_files.original_umask(),  # not the worker's private 077
                **_credentials(spawn_as),
            )
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            if pipes is not None:
                pipes.close()
            raise SpawnFailed(argv[0], exc) from exc
        for fd in child_only:
            os.close(fd)
        return cls(popen, trio.lowlevel.FdStream(out_read), trio.lowlevel.FdStream(err_read),
                   (out_write, err_write), commit_fd, pipes)

    def close_writers(self) -> None:
        """Once bash has exited: the pipes hang up when nothing else holds them."""
        for fd in self.writers:
            os.close(fd)
        self.writers = ()

    def close_commit(self) -> None:
        if self.commit_fd is not None:
            os.close(self.commit_fd)
            self.commit_fd = None

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    async def wait(self) -> int:
        """Wait for bash's exit and reap it (it is our child, so waitpid is ours to call)."""
        returncode = self.popen.poll()  # usually exited already: reaped without a pidfd
        if returncode is not None:
            return returncode
        pidfd = open_pidfd(self.pid)
        if pidfd is None:  # no pidfd (old kernel): a thread that may be abandoned
            return await trio.to_thread.run_sync(self.popen.wait, abandon_on_cancel=True)
        try:
            await trio.lowlevel.wait_readable(pidfd)
        finally:
            trio.lowlevel.notify_closing(pidfd)
            os.close(pidfd)
        return self.popen.wait()


def _credentials(spawn_as: SpawnAs) -> dict[str, object]:
    """Popen's user/group/extra_groups: all three or none (never root's groups)."""
    if spawn_as.uid is None:
        return {}
    return {"user": spawn_as.uid, "group": spawn_as.gid, "extra_groups": list(spawn_as.groups)}


def open_pidfd(pid: int) -> int | None:
    """A pidfd for ``pid``: readable once it exits, and it does not reap it."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux, kernel < 5.3, or a seccomp filter
        return None
