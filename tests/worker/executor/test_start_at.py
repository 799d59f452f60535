"""A held run's process starts its command when told, at its planned time, even when the
worker that spawned it dies in between; if the worker dies before telling it, the
orphan command decides. Both ways of holding it (the job's own bash, which sources the
wait script, and the wrapper that execs it) behave the same, and the job sees exactly
what ``bash -c COMMAND`` shows it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from worker.executor.start_at import WAIT_SCRIPT, can_wait_in_shell, held_command, job_shell_waits

WAIT_S = 10  # generous bound for what should take well under a second
PATH = {"PATH": "/usr/bin:/bin"}
# The job's environment for each way: its own bash, or (BASH_ENV set by the job) the
# wrapper.
WAYS = {"job's bash": PATH, "wrapper": {**PATH, "BASH_ENV": "/dev/null"}}

# argv: the way, command, the planned instant (epoch s), commit (1/0), orphan argv...
DYING_WORKER = textwrap.dedent("""
    import os, signal, sys, time, trio
    from worker.executor.process import start_process
    from worker.executor.start_at import WAIT_SCRIPT, held_command

    async def main():
        way, command, planned, commit = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
        env = {"PATH": "/usr/bin:/bin", **({"BASH_ENV": "/dev/null"} if way == "wrapper" else {})}
        argv, env = held_command("/bin/bash", command, sys.argv[5:], env, wait_script=WAIT_SCRIPT)
        process = await start_process(argv, env=env, cap_bytes=1024, kill_grace_s=1, held=True)
        if commit == "1":
            assert process.commit(planned - time.time())
        os.kill(os.getpid(), signal.SIGKILL)  # dies before the planned time

    trio.run(main)
""")


@pytest.fixture(params=list(WAYS))
def way(request) -> str:
    return request.param


def die_after_spawning(way: str, command: str, planned: float, *, commit: bool,
                       orphan: list[str]) -> None:
    """``planned``: an absolute instant, so that the dying worker's own start-up (a
    fresh Python importing trio) does not move it."""
    worker = subprocess.run(
        [sys.executable, "-c", DYING_WORKER, way, command, repr(planned), "1" if commit else "0",
         *orphan],
        capture_output=True, text=True, timeout=WAIT_S)
    assert worker.returncode == -9, worker.stderr


def wait_for_line(path: Path, text: str) -> str:
    deadline = time.monotonic() + WAIT_S
    while not (path.exists() and text in path.read_text()):
        assert time.monotonic() < deadline, "the command never ran"
        time.sleep(0.05)
    return path.read_text()


def test_a_committed_command_starts_at_its_time_though_its_worker_died_before(way, tmp_path: Path):
    out = tmp_path / "ran"
    command = f'echo "$EPOCHREALTIME $0 [$*]" > {out}; read -r x; echo "stdin rc=$?" >> {out}'
    planned = time.time() + 3.0  # well after a loaded machine has started a Python
    die_after_spawning(way, command, planned, commit=True, orphan=["false"])
    assert time.time() < planned  # the worker was gone before the planned time
    started, shell, args, *_ = wait_for_line(out, "stdin").split()
    assert planned <= float(started) < planned + 1.0
    # The job sees what `bash -c COMMAND` sees: no extra arguments, stdin at EOF.
    assert (shell, args) == ("/bin/bash", "[]")
    assert out.read_text().splitlines()[1] == "stdin rc=1"


def test_an_uncommitted_command_asks_the_orphan_command(way, tmp_path: Path):
    out, asked = tmp_path / "ran", tmp_path / "asked"
    die_after_spawning(way, f"echo ran > {out}", time.time() + 0.2, commit=False,
                       orphan=["/bin/bash", "-c", f'echo "$*" > {asked}', "orphan", "a b", "c"])
    assert wait_for_line(asked, "\n") == "a b c\n"  # its argv intact, then exit 0: run
    assert wait_for_line(out, "ran") == "ran\n"


def test_an_uncommitted_command_never_starts_when_the_orphan_command_says_no(way, tmp_path: Path):
    out, asked = tmp_path / "ran", tmp_path / "asked"
    die_after_spawning(way, f"echo ran > {out}", time.time(), commit=False,
                       orphan=["/bin/bash", "-c", f"echo no > {asked}; exit 1"])
    wait_for_line(asked, "no")
    time.sleep(0.5)
    assert not out.exists()


def test_only_bash_is_trusted_to_wait():
    assert can_wait_in_shell("/bin/bash") and can_wait_in_shell("bash")
    assert not can_wait_in_shell("/bin/sh") and not can_wait_in_shell("/usr/bin/zsh")


def test_a_held_run_needs_an_orphan_command():
    with pytest.raises(ValueError, match="orphan"):
        held_command("/bin/bash", "true", [], PATH)


def test_the_jobs_own_bash_waits_unless_it_would_skip_the_wait_script():
    argv, env = held_command("/bin/bash", "echo hi", ["orphan", "a b"], PATH,
                             wait_script=WAIT_SCRIPT)
    assert argv == ["/bin/bash", "-c", "echo hi"] and env["BASH_ENV"] == WAIT_SCRIPT
    assert Path(WAIT_SCRIPT).is_file()
    # Posix mode and Debian's ssh rule skip BASH_ENV; a job's own BASH_ENV is sourced
    # once, by the real bash; a launcher changes user at the exec; no wait script (the
    # probe failed) or a missing one (an upgrade in place): the wrapper for each (fail
    # closed: the command must not start unheld), the job's env as given.
    for extra in ({"POSIXLY_CORRECT": "1"}, {"POSIX_PEDANTIC": "1"}, {"SHELLOPTS": "posix"},
                  {"SSH_CLIENT": "10.0.0.1 22 22"}, {"SSH2_CLIENT": "x"}, {"BASH_ENV": "/x"}):
        argv, env = held_command("/bin/bash", "echo hi", ["orphan"], {**PATH, **extra},
                                 wait_script=WAIT_SCRIPT)
        assert argv[:2] == ["/bin/bash", "-c"] and argv[3] == "echo hi" and argv[-1] == "orphan"
        assert env == {**PATH, **extra} if "BASH_ENV" not in extra else env == PATH
    argv, env = held_command("/bin/bash", "echo hi", ["orphan"], PATH, launcher=["drop", "--"],
                             wait_script=WAIT_SCRIPT)
    assert argv[3] == "echo hi" and argv[-3:] == ["drop", "--", "orphan"] and env == PATH
    for script in (None, "/nonexistent/held_wait.bash"):
        argv, env = held_command("/bin/bash", "echo hi", ["orphan"], PATH, wait_script=script)
        assert argv[3] == "echo hi" and env == PATH


def test_the_probe_knows_a_shell_that_sources_the_wait_script():
    assert job_shell_waits("/bin/bash")
    assert not job_shell_waits("/bin/dash")  # ignores BASH_ENV: would start unheld
    assert not job_shell_waits("/nonexistent/bash")


async def run_held(way: str, command: str, env: dict[str, str], wait_s: float = 0.0):
    import trio

    from worker.executor.process import start_process

    argv, env = held_command("/bin/bash", command, ["false"], {**WAYS[way], **env},
                             wait_script=WAIT_SCRIPT)
    process = await start_process(argv, env=env, cap_bytes=4096, kill_grace_s=1, held=True)
    assert process.commit(wait_s)
    with trio.fail_after(WAIT_S):
        return process, await process.wait()


async def test_the_job_sees_what_bash_c_shows_it(way):
    # What `bash -c COMMAND` shows, from a bash run by hand with the same environment.
    command = ('echo "$0|$#|$*|$-|$BASH_EXECUTION_STRING|$SECONDS"; '
               'env | grep -c "^__SCHEDULER\\|held_wait" ; ls /proc/self/fd | wc -l; '
               'read -r x; echo "stdin $?"; set | grep -c "^__scheduler\\|^__[rwg]"')
    env = {**WAYS[way], "X": "1"}
    expected = subprocess.run(["/bin/bash", "-c", command], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True)
    _, result = await run_held(way, command, {"X": "1"})
    assert (result.returncode, result.stdout.decode()) == (expected.returncode, expected.stdout)
    # No variable of the wait left (the last grep finds none: exit 1), 3 fds (the
    # pipes closed), stdin at EOF.
    assert expected.stdout.splitlines() == [f"/bin/bash|0||hBc|{command}|0", "0", "4",
                                            "stdin 1", "0"] and expected.returncode == 1


async def test_a_lone_command_is_execd_in_the_held_process(way):
    # The job's process is the group leader, as with `bash -c sleep`: it gets the
    # kill's SIGTERM and its grace itself.
    import trio

    from worker.executor.process import start_process

    argv, env = held_command("/bin/bash", "sleep 30", ["false"], WAYS[way],
                             wait_script=WAIT_SCRIPT)
    process = await start_process(argv, env=env, cap_bytes=1024, kill_grace_s=1, held=True)
    results = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: _collect(process, results))
        assert process.commit(0)
        with trio.fail_after(WAIT_S):
            while Path(f"/proc/{process.pid}/cmdline").read_bytes() != b"sleep\x0030\x00":
                await trio.sleep(0.02)
        assert process.kill("test")
    assert results[0].returncode == -15  # sleep itself, killed by the SIGTERM


async def _collect(process, results: list) -> None:
    results.append(await process.wait())


async def test_a_jobs_tmout_never_ends_the_wait_for_the_word(way, tmp_path: Path):
    # Regression: bash's `read` honours TMOUT, so a job with TMOUT in its env made the
    # held process give up on its live worker and ask the orphan command after TMOUT s.
    import trio

    from worker.executor.process import start_process

    out, asked = tmp_path / "ran", tmp_path / "asked"
    argv, env = held_command("/bin/bash", f'echo "ran TMOUT=$TMOUT" > {out}',
                             ["/bin/bash", "-c", f"echo asked > {asked}"],
                             {**WAYS[way], "TMOUT": "1"}, wait_script=WAIT_SCRIPT)
    process = await start_process(argv, env=env, cap_bytes=1024, kill_grace_s=1, held=True)
    await trio.sleep(1.5)  # past TMOUT: the wrapper must still be waiting for the word
    assert process.commit(0)
    with trio.fail_after(WAIT_S):
        result = await process.wait()
    assert result.returncode == 0, result
    assert out.read_text() == "ran TMOUT=1\n"  # the job keeps its TMOUT
    assert not asked.exists()


async def test_a_held_run_waits_though_its_worker_numbers_its_fds_above_1023(way, tmp_path):
    # Regression: bash's `read -t` selects on the wait pipe's fd, and glibc aborts bash
    # ("bit out of range 0 - FD_SETSIZE on fd_set") for an fd of 1024 or more, which a
    # worker with many runs in flight gets (511 runs failed at 700 fires/s).
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"needs 1200 fds, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    fillers = []
    try:
        while not fillers or fillers[-1] < 1100:  # the pipes the spawn makes come after
            fillers.append(os.open(os.devnull, os.O_RDONLY))
        out = tmp_path / "ran"
        process, result = await run_held(way, f"echo ran > {out}", {}, wait_s=0.05)
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert result.returncode == 0 and result.stderr == b"", result
    assert out.read_text() == "ran\n"


async def test_seconds_do_not_count_the_wait(way):
    _, result = await run_held(way, 'echo "$SECONDS"', {}, wait_s=1.2)
    assert result.stdout == b"0\n", result  # as a bash just started, though it waited


@pytest.fixture(scope="module")
def comma_locale(tmp_path_factory) -> dict[str, str]:
    """A locale whose decimal point is a comma (de_DE), compiled into a LOCPATH of the
    test's own: a job's env may select one."""
    if shutil.which("localedef") is None or not Path("/usr/share/i18n/locales/de_DE").exists():
        pytest.skip("needs localedef and the de_DE locale source (Debian: locales)")
    path = tmp_path_factory.mktemp("locales")
    subprocess.run(["localedef", "-i", "de_DE", "-f", "UTF-8", str(path / "de_DE.UTF-8")],
                   check=True, capture_output=True, timeout=60)
    return {"LOCPATH": str(path), "LC_ALL": "de_DE.UTF-8"}


async def test_a_comma_decimal_locale_still_waits_for_the_instant(way, comma_locale):
    # The wait is `read -t 0.8`, with a dot. Were bash to parse it in the job's locale, a
    # comma one would refuse it, `read` would fail at once and the command start early.
    started_after = time.time() + 0.8  # the commit comes later: the instant too
    _, result = await run_held(way, 'echo "$EPOCHREALTIME"', comma_locale, wait_s=0.8)
    assert result.returncode == 0 and result.stderr == b"", result
    started = result.stdout.decode().strip()
    assert "," in started  # the command ran in the comma locale
    assert float(started.replace(",", ".")) >= started_after
