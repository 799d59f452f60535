"""One command in its own process group, with real processes and wall-time bounds."""

from __future__ import annotations

import os
import signal
import time

import pytest
import trio

from worker.executor.process import PIPE_DRAIN_S, decode_output, start_process
from worker.executor.spawn import SpawnFailed

BASH = "/bin/bash"


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of ``pid`` from /proc, None once it is fully gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces
    return fields[0], int(fields[2])


def live_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are still running. A zombie counts as dead:
    it runs nothing and holds nothing but its pid, until its (new) parent reaps it."""
    members = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            state, group = stat
            if group == pgid and state not in "ZX":
                members.append(int(entry.name))
    return members


def pid_alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in "ZX"


async def wait_group_gone(pgid: int, *, within_s: float = 1.0) -> None:
    """Fails unless every member of the group is dead within ``within_s``. A SIGKILL
    is delivered asynchronously, so the check polls (observation only, no logic)."""
    with trio.fail_after(within_s):
        while live_members(pgid):
            await trio.sleep(0.01)


async def run(command: str, *, cap_bytes: int = 65536, kill_grace_s: float = 1.0,
              timeout_s: float = 0):
    process = await start_process([BASH, "-c", command], env=os.environ, cap_bytes=cap_bytes,
                                  kill_grace_s=kill_grace_s, timeout_s=timeout_s)
    return process, await process.wait()


async def test_captures_stdout_stderr_and_exit_code():
    _, result = await run("echo out; echo err >&2; exit 7")
    assert (result.stdout, result.stderr, result.returncode) == (b"out\n", b"err\n", 7)
    assert not result.truncated and result.kill_reason is None and not result.timed_out


async def test_keeps_exactly_the_cap_and_reads_the_rest_without_blocking():
    with trio.fail_after(10):
        _, result = await run("yes 0123456789 | head -c 1048576; yes e | head -c 300000 >&2;"
                              " exit 3", cap_bytes=1000)
    assert result.stdout == (b"0123456789\n" * 100)[:1000]
    assert result.stderr == b"e\n" * 500
    assert result.truncated and result.returncode == 3


async def test_output_exactly_at_the_cap_is_not_truncated():
    _, result = await run("printf 'abcd'", cap_bytes=4)
    assert result.stdout == b"abcd" and not result.truncated


async def test_timeout_terminates_the_whole_group():
    start = time.monotonic()
    with trio.fail_after(10):
        process, result = await run("sleep 300 & sleep 300; echo never", timeout_s=0.5)
    assert 0.4 < time.monotonic() - start < 3
    assert result.timed_out and result.kill_reason == "timed out after 0.5 s"
    assert result.returncode == -signal.SIGTERM and result.stdout == b""
    await wait_group_gone(process.pid)


async def test_a_group_that_ignores_sigterm_gets_sigkill_after_the_grace():
    start = time.monotonic()
    with trio.fail_after(10):
        process, result = await run("trap '' TERM; sleep 300", kill_grace_s=0.5, timeout_s=0.3)
    assert 0.7 < time.monotonic() - start < 3
    assert result.timed_out and result.returncode == -signal.SIGKILL
    await wait_group_gone(process.pid)


class SpawnedTasks(trio.abc.Instrument):
    """The names of the tasks spawned while it is installed."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.names.append(task.name)


async def test_a_run_never_asked_to_stop_starts_no_sigkill_timer():
    spawned = SpawnedTasks()
    trio.lowlevel.add_instrument(spawned)
    try:
        _, result = await run("echo out; echo err >&2")
    finally:
        trio.lowlevel.remove_instrument(spawned)
    assert result.stdout == b"out\n" and result.stderr == b"err\n"
    assert not [name for name in spawned.names if "escalate" in name]
    # ...and both pipes and the exit are waited for in wait()'s own task: it starts none.
    assert spawned.names == []


async def test_both_pipes_are_read_whichever_speaks_and_whichever_ends_first():
    command = ("for i in $(seq 200); do echo o$i; echo e$i >&2; done; exec 1>&-;"
               " yes e | head -c 200000 >&2")
    with trio.fail_after(10):
        _, result = await run(command, cap_bytes=1 << 20)
    lines = [f"o{i}\n" for i in range(1, 201)]
    assert result.stdout == "".join(lines).encode()
    assert result.stderr.startswith(b"e1\ne2\n") and result.stderr.endswith(b"e\n" * 10)
    assert len(result.stderr) == sum(len(f"e{i}\n") for i in range(1, 201)) + 200000


async def test_a_kill_before_wait_still_gets_its_sigkill_after_the_grace(fifo):
    process = await start_process([BASH, "-c", f"trap '' TERM; echo up > {fifo}; sleep 300"],
                                  env=os.environ, cap_bytes=10, kill_grace_s=0.5)
    with trio.fail_after(10):
        await trio.to_thread.run_sync(fifo.read_text, abandon_on_cancel=True)
    start = time.monotonic()
    assert process.kill("job deleted")
    with trio.fail_after(10):
        result = await process.wait()
    assert 0.4 < time.monotonic() - start < 3
    assert result.kill_reason == "job deleted" and result.returncode == -signal.SIGKILL
    await wait_group_gone(process.pid)


async def test_kill_first_reason_wins_and_timeout_does_not_overwrite_it():
    process = await start_process([BASH, "-c", "sleep 300"], env=os.environ, cap_bytes=10,
                                  kill_grace_s=1, timeout_s=0.3)
    assert process.kill("job deleted")
    assert not process.kill("again")
    with trio.fail_after(5):
        result = await process.wait()
    assert result.kill_reason == "job deleted" and not result.timed_out


async def test_kill_after_exit_does_nothing():
    process, result = await run("exit 0")
    assert not process.kill("too late")
    assert result.returncode == 0 and result.kill_reason is None


async def test_background_children_are_killed_when_bash_exits():
    with trio.fail_after(10):
        process, result = await run("sleep 100 & echo $!")
    assert result.returncode == 0
    child = int(result.stdout)
    await wait_group_gone(process.pid)
    assert not pid_alive(child)


async def test_a_process_that_left_the_group_cannot_hold_the_run_open():
    # `setsid` gives the sleep a session of its own: out of our reach, holding our stdout.
    # bash waits until the sleep really is a session leader (field 6 of its stat).
    command = ("setsid sleep 30 & until [ \"$(cut -d' ' -f6 /proc/$!/stat)\" = $! ]; do :; done;"
               " echo $!")
    start = time.monotonic()
    with trio.fail_after(10):
        _, result = await run(command)
    escaped = int(result.stdout)
    try:
        assert result.returncode == 0 and pid_alive(escaped)
        assert PIPE_DRAIN_S - 0.1 < time.monotonic() - start < PIPE_DRAIN_S + 2
    finally:
        os.kill(escaped, signal.SIGKILL)


class StepsOf(trio.abc.Instrument):
    """How many steps ``task`` ran while it is installed."""

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task = task
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.steps += 1


async def test_a_grandchild_holding_the_pipes_neither_keeps_the_run_nor_spins_it(fifo):
    # The escaped sleep holds stdout and stderr; bash's exit leaves a readable pidfd
    # behind, which must not wake wait() over and over during the drain.
    command = ("setsid sleep 30 & until [ \"$(cut -d' ' -f6 /proc/$!/stat)\" = $! ];"
               f" do :; done; echo $! > {fifo}")
    steps = StepsOf(trio.lowlevel.current_task())
    process = await start_process([BASH, "-c", command], env=os.environ, cap_bytes=100,
                                  kill_grace_s=1)
    escaped: list[int] = []

    async def read_escaped() -> None:
        escaped.append(int(await trio.to_thread.run_sync(fifo.read_text)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_escaped)
        trio.lowlevel.add_instrument(steps)
        start = time.monotonic()
        try:
            with trio.fail_after(10):
                result = await process.wait()
        finally:
            trio.lowlevel.remove_instrument(steps)
    try:
        assert result.returncode == 0 and pid_alive(escaped[0])
        assert PIPE_DRAIN_S - 0.1 < time.monotonic() - start < PIPE_DRAIN_S + 1
        assert steps.steps < 10, steps.steps  # the exit, the drain's end: never a spin
    finally:
        os.kill(escaped[0], signal.SIGKILL)


async def test_a_process_that_prints_nothing_wakes_wait_once():
    # Its pipes hang up one by one as it exits, before its pidfd says so; held open by
    # us until then, they wake nobody.
    for _ in range(20):
        process = await start_process([BASH, "-c", "true"], env=os.environ, cap_bytes=10,
                                      kill_grace_s=1)
        steps = StepsOf(trio.lowlevel.current_task())
        trio.lowlevel.add_instrument(steps)
        try:
            with trio.fail_after(10):
                result = await process.wait()
        finally:
            trio.lowlevel.remove_instrument(steps)
        assert result.returncode == 0 and steps.steps == 1


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_no_fd_is_left_open_however_a_run_ends():
    before = open_fds()
    for command in ["echo out; echo err >&2", "exec 1>&- 2>&-; sleep 0.05", "exit 3"]:
        await run(command)
    await run("sleep 300", timeout_s=0.1)
    killed = await start_process([BASH, "-c", "sleep 300"], env=os.environ, cap_bytes=10,
                                 kill_grace_s=1)
    killed.kill("job deleted")
    await killed.wait()
    cancelled = await start_process([BASH, "-c", "sleep 300"], env=os.environ,
                                    cap_bytes=10, kill_grace_s=1)
    with trio.move_on_after(0.1):
        await cancelled.wait()
    with pytest.raises(SpawnFailed):
        await start_process(["/nonexistent/bash"], env=os.environ, cap_bytes=10,
                            kill_grace_s=1)
    assert open_fds() == before


class CountingTap:
    """A live-output tap that keeps what it is handed."""

    def __init__(self) -> None:
        self.data = {"out": bytearray(), "err": bytearray()}
        self.closed = False

    def write(self, stream: str, data: bytes) -> None:
        self.data[stream] += data

    def close(self) -> None:
        self.closed = True


async def test_a_chatty_process_is_captured_up_to_the_cap_and_tapped_in_full():
    tap = CountingTap()
    command = ("for i in $(seq 3000); do echo out$i; echo err$i >&2; done;"
               " head -c 2000000 /dev/zero")
    process = await start_process([BASH, "-c", command], env=os.environ,
                                  cap_bytes=30000, kill_grace_s=1, tap=tap)
    with trio.fail_after(10):
        result = await process.wait()
    out = "".join(f"out{i}\n" for i in range(1, 3001)).encode() + bytes(2000000)
    err = "".join(f"err{i}\n" for i in range(1, 3001)).encode()
    assert result.returncode == 0 and result.truncated
    assert result.stdout == out[:30000] and result.stderr == err[:30000]
    assert bytes(tap.data["out"]) == out and bytes(tap.data["err"]) == err and tap.closed


async def test_a_kill_during_wait_escalates_to_sigkill_after_the_grace(fifo):
    process = await start_process([BASH, "-c", f"trap '' TERM; echo up > {fifo}; sleep 300"],
                                  env=os.environ, cap_bytes=10, kill_grace_s=0.5)
    killed_at: list[float] = []

    async def kill_once_up() -> None:  # while wait() sleeps
        await trio.to_thread.run_sync(fifo.read_text, abandon_on_cancel=True)
        assert process.kill("job deleted")
        killed_at.append(time.monotonic())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(kill_once_up)
        with trio.fail_after(10):
            result = await process.wait()
    assert 0.4 < time.monotonic() - killed_at[0] < 3
    assert result.kill_reason == "job deleted" and result.returncode == -signal.SIGKILL
    assert not result.timed_out
    await wait_group_gone(process.pid)


async def test_a_kill_with_a_shorter_grace_escalates_sooner(fifo):
    process = await start_process([BASH, "-c", f"trap '' TERM; echo up > {fifo}; sleep 300"],
                                  env=os.environ, cap_bytes=10, kill_grace_s=30)
    with trio.fail_after(10):
        await trio.to_thread.run_sync(fifo.read_text, abandon_on_cancel=True)
    start = time.monotonic()
    assert process.kill("fenced", grace_s=0.3)
    with trio.fail_after(10):
        result = await process.wait()
    assert 0.2 < time.monotonic() - start < 3
    assert result.returncode == -signal.SIGKILL
    await wait_group_gone(process.pid)


@pytest.fixture
def no_pidfd(monkeypatch):
    """An old kernel: no pidfd, bash's exit is waited for (and reaped) in a thread."""
    monkeypatch.setattr("worker.executor.process.open_pidfd", lambda pid: None)


async def test_without_a_pidfd_output_exit_and_timeout_still_work(no_pidfd):
    _, result = await run("echo out; echo err >&2; exit 7")
    assert (result.stdout, result.stderr, result.returncode) == (b"out\n", b"err\n", 7)
    start = time.monotonic()
    with trio.fail_after(10):
        process, result = await run("trap '' TERM; sleep 300 & sleep 300", kill_grace_s=0.3,
                                    timeout_s=0.3)
    assert 0.5 < time.monotonic() - start < 3
    assert result.timed_out and result.returncode == -signal.SIGKILL
    await wait_group_gone(process.pid)


async def test_cancelling_wait_kills_and_reaps_the_group():
    process = await start_process([BASH, "-c", "sleep 300 & sleep 300"], env=os.environ,
                                  cap_bytes=10, kill_grace_s=1)
    with trio.move_on_after(0.3):
        await process.wait()
    await wait_group_gone(process.pid)


async def test_spawn_failure_is_a_named_error():
    with pytest.raises(SpawnFailed, match=r"cannot start '/nonexistent/bash'.*errno 2"):
        await start_process(["/nonexistent/bash", "-c", "true"], env=os.environ,
                            cap_bytes=10, kill_grace_s=1)


async def test_environment_is_exactly_the_one_given():
    process = await start_process([BASH, "-c", 'echo "$ONLY_HERE ${HOME-unset}"'],
                                  env={"ONLY_HERE": "yes", "PATH": "/usr/bin:/bin"},
                                  cap_bytes=100, kill_grace_s=1)
    result = await process.wait()
    assert result.stdout == b"yes unset\n"


def test_decode_output_replaces_bad_bytes_and_drops_nul():
    assert decode_output(b"a\x00b\xffc\xc3\xa9") == "ab\ufffdc\u00e9"
