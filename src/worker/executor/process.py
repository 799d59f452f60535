"""One command in its own process group: capped capture, timeout, kill of the whole group.

    process = await start_process([bash, "-c", cmd], env=env, cap_bytes=65536,
                                  kill_grace_s=5, timeout_s=60)
    process.kill("job deleted")           # any time, from any task; never blocks
    result = await process.wait()         # call it at once: it owns the cleanup

Why a process group: ``bash -c`` forks whatever the command runs; signalling bash alone
would leave its children running (the seed's defect: a killed job kept running). The
child starts a new session (``setsid``), so its pid is also its process-group id and
every descendant that does not leave the group on purpose is reached by ``killpg``.

Kill and timeout: SIGTERM to the group, then SIGKILL to the group ``kill_grace_s``
later if bash is still alive. The first reason to stop wins (a timeout after a kill
does not overwrite it, nor the other way round). Neither costs a task: the timeout and
the SIGKILL are deadlines that ``wait()``'s own loop wakes up at (``kill()`` and
``commit()`` move the one it sleeps until).

After bash exits, however it exits, whatever is still in its group gets SIGKILL, like
systemd's ``KillMode=control-group``: a job is its whole group, a background child
(``sleep 100 &``) must not outlive the run, hold its output pipes open (which would
keep the run from ever ending), or escape the job's timeout. A process that left the
group (its own ``setsid``) is out of reach; the pipes it may still hold are given up
after ``PIPE_DRAIN_S`` so that the run ends anyway.

Invariant that makes group signals safe: bash is reaped only after the final group
SIGKILL. Until it is reaped, its pid, which is the group id, cannot be reused by the
kernel, so ``killpg`` can never hit an unrelated process group. We wait for its exit
on a pidfd of our own, which does not reap it; ``Child.wait`` reaps after. (A kernel
without pidfds, before 5.3: bash is reaped in a thread as it exits, accepting a tiny
pid-reuse window before the group's SIGKILL.)

One task, the caller's: ``wait()`` sleeps on one fd, an epoll of the run's own
(``Child.pipes``) that holds both output pipes and the pidfd, and wakes up when either
pipe has data, when bash exits, or at the next deadline (timeout, SIGKILL, the pipes'
drain). A task per pipe, or one for the pipes and one for the exit, would cost their
own wake-ups for every run; so would the pipes' hang-ups, which the kernel sends one
by one before the exit: we hold a copy of each write end until bash has exited
(``Child.close_writers``), and a run that prints nothing wakes ``wait()`` once.

Capture: stdout and stderr are read concurrently to EOF, one read per ready pipe per
wake-up (as ``receive_some`` would: a chatty pipe cannot starve the loop); the first
``cap_bytes`` of each are kept and the rest is read and thrown away, so a chatty job
never blocks on a full pipe. ``truncated`` says that something was thrown away. With
a ``tap`` (``worker.live_output``), every chunk read is also handed to it as it comes
(the live output: O(1), no I/O), and the tap is closed once both pipes are read to
the end.

Cancellation (the Executor itself is cancelled): the group gets SIGKILL and bash is
reaped under a short shielded deadline, then Cancelled propagates.

The spawn itself, and who the child runs as, are ``spawn``'s (``SpawnAs``,
``SpawnFailed``). Group signals reach a child that changed user: the worker stays root.
"""

from __future__ import annotations

import logging
import math
import os
import select
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from .spawn import AS_WORKER, Child, SpawnAs, open_pidfd

if TYPE_CHECKING:  # not at run time: a held child's helper imports this module fast
    from worker.live_output import Tap

log = logging.getLogger(__name__)

PIPE_DRAIN_S = 2.0  # after the group is dead: how long we wait for EOF on the pipes
REAP_TIMEOUT_S = 5.0  # cleanup on cancellation: longest wait for the SIGKILLed bash
READ_CHUNK_BYTES = 65536


@dataclass(frozen=True, slots=True)
class ProcessResult:
    """How one command ended."""

    returncode: int  # as Python reports it: negative = killed by that signal
    stdout: bytes  # at most cap_bytes
    stderr: bytes  # at most cap_bytes
    truncated: bool  # some stdout or stderr beyond cap_bytes was thrown away
    kill_reason: str | None  # why kill() (or the timeout) asked it to stop, if it did
    timed_out: bool  # the kill was the timeout's


def decode_output(data: bytes) -> str:
    """Captured bytes as text: UTF-8, bad bytes replaced, NULs dropped (no store takes them)."""
    return data.decode("utf-8", errors="replace").replace("\x00", "")


def signal_group(pgid: int, sig: int) -> None:
    """``killpg`` that tolerates a group already gone. Never blocks."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass  # every member has exited already
    except PermissionError:
        # Only when no member could be signalled: they all changed credentials (setuid).
        log.warning("cannot signal process group %d with %s: permission denied", pgid, sig)


async def start_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cap_bytes: int,
    kill_grace_s: float,
    timeout_s: float = 0,
    held: bool = False,
    spawn_as: SpawnAs = AS_WORKER,
    tap: Tap | None = None,
) -> GroupProcess:
    """Start ``argv`` as the leader of a new session; raise SpawnFailed if it cannot.

    ``timeout_s`` <= 0 means no timeout; it counts from now. Call ``wait()`` on the
    result without awaiting anything else first: until then nobody cleans it up.
    ``held`` (see ``start_at``): stdin is a pipe whose write end only we hold, for
    ``commit()``; a second pipe, both ends the child's, has its read and write fds in
    the child's ``HELD_FDS_ENV``; the timeout then counts from the commit. Otherwise
    stdin is ``/dev/null``.

    A cancel point but not a schedule point (the spawn waits for nothing, and a yield
    would cost every run a task step); ``wait()`` is both.
    """
    await trio.lowlevel.checkpoint_if_cancelled()
    child = Child.spawn(argv, env, held=held, spawn_as=spawn_as)
    deadline = trio.current_time() + timeout_s if timeout_s > 0 and not held else math.inf
    return GroupProcess(child, cap_bytes=cap_bytes, kill_grace_s=kill_grace_s,
                        deadline=deadline, timeout_s=timeout_s, tap=tap)


class _Capture:
    """One pipe's capture: the first ``cap_bytes`` kept, the rest counted as truncated."""

    def __init__(self, stream: trio.lowlevel.FdStream, cap_bytes: int,
                 tap: Tap | None = None, name: str = "out") -> None:
        self.stream = stream  # non-blocking; read raw by wait(), closed by _cleanup
        self.tap = tap
        self.name = name
        self.cap_bytes = cap_bytes
        self.data = bytearray()
        self.truncated = False

    def read_once(self) -> bool:
        """One read, which never blocks; False at EOF."""
        try:
            chunk = os.read(self.stream.fileno(), READ_CHUNK_BYTES)
        except BlockingIOError:  # woken for nothing: still open
            return True
        if not chunk:
            return False
        if self.tap is not None:
            self.tap.write(self.name, chunk)
        room = self.cap_bytes - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        if len(chunk) > room:
            self.truncated = True
        return True


class GroupProcess:
    """A started command and its process group. Made by ``start_process`` only."""

    def __init__(self, proc: Child, *, cap_bytes: int, kill_grace_s: float,
                 deadline: float, timeout_s: float, tap: Tap | None = None) -> None:
        self._proc = proc
        self._tap = tap
        self._pid = proc.pid
        self._kill_grace_s = kill_grace_s
        self._deadline = deadline  # the timeout (trio time); inf: none yet (held) or ever
        self._timeout_s = timeout_s
        self._stdout = _Capture(proc.stdout, cap_bytes, tap, "out")
        self._stderr = _Capture(proc.stderr, cap_bytes, tap, "err")
        self._kill_reason: str | None = None
        self._timed_out = False
        self._kill_at = math.inf  # the group's SIGKILL, once asked to stop; inf once sent
        self._drain_until = math.inf  # after bash's exit: how long EOF is waited for
        self._sleep: trio.CancelScope | None = None  # wait()'s, while it sleeps on the fds
        self._exit_seen = False  # the pidfd (or, without one, the reaping thread) said so
        self._exited = False  # bash's exit was handled: no more SIGTERM from kill()
        self._reaped = False  # after this, never signal the group again (pid reusable)
        self._pidfd = _watch_exit(proc)

    @property
    def pid(self) -> int:
        """bash's pid, which is also its process-group and session id."""
        return self._pid

    @property
    def kill_reason(self) -> str | None:
        return self._kill_reason

    def kill(self, reason: str, grace_s: float | None = None) -> bool:
        """SIGTERM the group now, SIGKILL it after the grace (``grace_s`` if given,
        capped by ``kill_grace_s``: a fenced run must be gone before its lease can
        expire); never blocks.

        Returns False, doing nothing, if a kill (or the timeout) came first or bash has
        already exited: the run then ends for the earlier reason.
        """
        if self._exited or self._kill_reason is not None:
            return False
        if grace_s is not None:
            self._kill_grace_s = max(0.0, min(self._kill_grace_s, grace_s))
        self._kill_reason = reason
        signal_group(self._pid, signal.SIGTERM)
        self._kill_at = trio.current_time() + self._kill_grace_s  # wait() sends it
        self._wake_at_next_deadline()
        return True

    def commit(self, wait_s: float) -> bool:
        """Tell a held child to start its command ``wait_s`` from now (``start_at``);
        its timeout counts from then. False, doing nothing, if it is stopping or gone.

        Never blocks: the line is far below the pipe's buffer, and the pipe is fresh.
        """
        if self._proc.commit_fd is None or self._exited or self._kill_reason is not None:
            return False
        try:
            os.write(self._proc.commit_fd, f"{max(wait_s, 0.0):.6f}\n".encode())
        except OSError:  # it died meanwhile (EPIPE): it will be reaped as it is
            return False
        finally:
            self._proc.close_commit()
        if self._timeout_s > 0:
            self._deadline = trio.current_time() + max(wait_s, 0.0) + self._timeout_s
            self._wake_at_next_deadline()
        return True

    async def wait(self) -> ProcessResult:
        """Wait for bash, kill what is left of its group, reap it, finish reading.

        Call once. On cancellation the group is SIGKILLed and reaped before Cancelled
        propagates.
        """
        try:
            if self._pidfd is not None:
                returncode = await self._follow()
            else:  # old kernel: the exit is a thread's to wait for
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._reap_in_thread)
                    returncode = await self._follow()  # after the thread's return
        finally:
            if self._tap is not None:
                self._tap.close()
            await self._cleanup()
        return ProcessResult(
            returncode=returncode,
            stdout=bytes(self._stdout.data),
            stderr=bytes(self._stderr.data),
            truncated=self._stdout.truncated or self._stderr.truncated,
            kill_reason=self._kill_reason,
            timed_out=self._timed_out,
        )

    async def _follow(self) -> int:
        """Until bash has exited and both pipes are read to EOF, or ``PIPE_DRAIN_S``
        past the exit (a process that left the group may hold them open for ever).

        Invariant: the pipes' epoll holds exactly the fds still to watch. A pipe leaves
        it at EOF; the pidfd once seen, since it stays readable after the exit (left in,
        it would wake the loop without end).
        """
        reading = {capture.stream.fileno(): capture for capture in (self._stdout, self._stderr)}
        returncode: int | None = None
        while returncode is None or (reading and trio.current_time() < self._drain_until):
            with trio.move_on_at(self._next_deadline()) as self._sleep:
                await trio.lowlevel.wait_readable(self._proc.pipes.fileno())
            self._sleep = None
            self._read_ready(reading)
            if returncode is not None:
                continue
            if self._exit_seen:
                self._exited = True
                returncode = await self._kill_group_and_reap()
                self._drain_until = trio.current_time() + PIPE_DRAIN_S
                # Only now can the pipes hang up (``Child.close_writers``): usually at
                # once, so their EOF is read in this same wake-up.
                self._proc.close_writers()
                self._read_ready(reading)
            else:
                self._on_deadlines()
        return returncode

    def _read_ready(self, reading: dict[int, _Capture]) -> None:
        """One read from each ready pipe; notes the exit if the pidfd is ready."""
        pipes = self._proc.pipes
        for fd, _ in pipes.poll(0):
            if fd == self._pidfd:
                pipes.unregister(fd)
                self._exit_seen = True
            elif not reading[fd].read_once():
                pipes.unregister(fd)
                del reading[fd]

    def _next_deadline(self) -> float:
        """When wait() must wake up even if no fd is ready."""
        if self._exit_seen:
            return self._drain_until
        if self._kill_reason is None:
            return self._deadline  # the timeout
        return self._kill_at

    def _wake_at_next_deadline(self) -> None:
        """A deadline moved (a kill, a commit, the exit): wait()'s sleep follows it."""
        if self._sleep is not None:
            self._sleep.deadline = self._next_deadline()

    def _on_deadlines(self) -> None:
        """bash still runs: its timeout, then the SIGKILL at the end of a kill's grace."""
        now = trio.current_time()
        if self._kill_reason is None and now >= self._deadline:
            self._timed_out = self.kill(f"timed out after {self._timeout_s:g} s")
        if now >= self._kill_at:
            self._kill_at = math.inf
            signal_group(self._pid, signal.SIGKILL)  # bash is unreaped: the pgid is ours

    async def _reap_in_thread(self) -> None:
        """No pidfd (old kernel): bash is reaped as it exits, then wait() is woken."""
        await self._proc.wait()
        self._exit_seen = True
        if self._sleep is not None:
            self._sleep.deadline = -math.inf

    async def _kill_group_and_reap(self) -> int:
        signal_group(self._pid, signal.SIGKILL)  # bash is unreaped: the pgid is still ours
        returncode = await self._proc.wait()  # it has exited: no wait
        self._reaped = True
        return returncode

    async def _cleanup(self) -> None:
        """Runs on every exit from wait(); after a cancellation it kills and reaps."""
        if not self._reaped:
            signal_group(self._pid, signal.SIGKILL)
            with trio.move_on_after(REAP_TIMEOUT_S, shield=True):
                await self._proc.wait()
                self._reaped = True
            if not self._reaped:
                log.error("bash pid %d did not die within %s s of SIGKILL", self._pid,
                          REAP_TIMEOUT_S)
        self._exited = True
        self._proc.close_commit()  # reaped (or past hope): EOF can tell nobody anything now
        self._proc.close_writers()
        if self._pidfd is not None:  # never waited on by trio itself: only by the epoll
            os.close(self._pidfd)
            self._pidfd = None
        # Sync: wait() has returned, nothing waits on these.
        trio.lowlevel.notify_closing(self._proc.pipes.fileno())
        self._proc.pipes.close()
        for capture in (self._stdout, self._stderr):
            capture.stream.close()


def _watch_exit(proc: Child) -> int | None:
    """A pidfd for bash, registered in its pipes' epoll; None without pidfds."""
    pidfd = open_pidfd(proc.pid)
    if pidfd is None:
        return None
    try:
        proc.pipes.register(pidfd, select.EPOLLIN)  # level-triggered
    except OSError:  # ENOMEM, or the user's epoll watches are used up: as without one
        os.close(pidfd)
        return None
    return pidfd
