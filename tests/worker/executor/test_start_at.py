"""A held run's process starts its command when told, at its planned time, even when the
worker that spawned it dies in between; if the worker dies before telling it, the
orphan command decides."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from worker.executor.start_at import can_wait_in_shell, held_argv

WAIT_S = 10  # generous bound for what should take well under a second

# argv: command, seconds until the planned instant, commit (1/0), orphan argv...
DYING_WORKER = textwrap.dedent("""
    import os, signal, sys, trio
    from worker.executor.process import start_process
    from worker.executor.start_at import held_argv

    async def main():
        command, wait_s, commit, orphan = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]
        process = await start_process(held_argv("/bin/bash", command, orphan),
                                      env={"PATH": "/usr/bin:/bin"}, cap_bytes=1024,
                                      kill_grace_s=1, held=True)
        if commit == "1":
            assert process.commit(wait_s)
        os.kill(os.getpid(), signal.SIGKILL)  # dies before the planned time

    trio.run(main)
""")


def die_after_spawning(command: str, wait_s: float, *, commit: bool, orphan: list[str]) -> None:
    worker = subprocess.run(
        [sys.executable, "-c", DYING_WORKER, command, str(wait_s), "1" if commit else "0", *orphan],
        capture_output=True, text=True, timeout=WAIT_S)
    assert worker.returncode == -9, worker.stderr


def wait_for_line(path: Path, text: str) -> str:
    deadline = time.monotonic() + WAIT_S
    while not (path.exists() and text in path.read_text()):
        assert time.monotonic() < deadline, "the command never ran"
        time.sleep(0.05)
    return path.read_text()


def test_a_committed_command_starts_at_its_time_though_its_worker_died_before(tmp_path: Path):
    out = tmp_path / "ran"
    command = f'echo "$EPOCHREALTIME $0 [$*]" > {out}; read -r x; echo "stdin rc=$?" >> {out}'
    planned = time.time() + 0.5
    die_after_spawning(command, 0.5, commit=True, orphan=["false"])
    assert time.time() < planned  # the worker was gone before the planned time
    started, shell, args, *_ = wait_for_line(out, "stdin").split()
    assert planned <= float(started) < planned + 1.0
    # The job sees what `bash -c COMMAND` sees: no extra arguments, stdin at EOF.
    assert (shell, args) == ("/bin/bash", "[]")
    assert out.read_text().splitlines()[1] == "stdin rc=1"


def test_an_uncommitted_command_asks_the_orphan_command(tmp_path: Path):
    out, asked = tmp_path / "ran", tmp_path / "asked"
    die_after_spawning(f"echo ran > {out}", 0.2, commit=False,
                       orphan=["/bin/bash", "-c", f'echo "$*" > {asked}', "orphan", "a b", "c"])
    assert wait_for_line(asked, "\n") == "a b c\n"  # its argv intact, then exit 0: run
    assert wait_for_line(out, "ran") == "ran\n"


def test_an_uncommitted_command_never_starts_when_the_orphan_command_says_no(tmp_path: Path):
    out, asked = tmp_path / "ran", tmp_path / "asked"
    die_after_spawning(f"echo ran > {out}", 0.0, commit=False,
                       orphan=["/bin/bash", "-c", f"echo no > {asked}; exit 1"])
    wait_for_line(asked, "no")
    time.sleep(0.5)
    assert not out.exists()


def test_only_bash_is_trusted_to_wait():
    assert can_wait_in_shell("/bin/bash") and can_wait_in_shell("bash")
    assert not can_wait_in_shell("/bin/sh") and not can_wait_in_shell("/usr/bin/zsh")


def test_a_held_run_needs_an_orphan_command():
    with pytest.raises(ValueError, match="orphan"):
        held_argv("/bin/bash", "true", [])


async def test_a_jobs_tmout_never_ends_the_wait_for_the_word(tmp_path: Path):
    # Regression: bash's `read` honours TMOUT, so a job with TMOUT in its env made the
    # held process give up on its live worker and ask the orphan command after TMOUT s.
    import trio

    from worker.executor.process import start_process

    out, asked = tmp_path / "ran", tmp_path / "asked"
    argv = held_argv("/bin/bash", f'echo "ran TMOUT=$TMOUT" > {out}',
                     ["/bin/bash", "-c", f"echo asked > {asked}"])
    process = await start_process(argv, env={"PATH": "/usr/bin:/bin", "TMOUT": "1"},
                                  cap_bytes=1024, kill_grace_s=1, held=True)
    await trio.sleep(1.5)  # past TMOUT: the wrapper must still be waiting for the word
    assert process.commit(0)
    with trio.fail_after(WAIT_S):
        result = await process.wait()
    assert result.returncode == 0, result
    assert out.read_text() == "ran TMOUT=1\n"  # the job keeps its TMOUT
    assert not asked.exists()
