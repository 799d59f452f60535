"""A process spawned ahead of its planned time starts its command then, by itself:
even when the worker that spawned it dies in between."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from worker.start_at import can_wait_in_shell, waiting_argv

WAIT_S = 10  # generous bound for what should take well under a second

DYING_WORKER = textwrap.dedent("""
    import os, signal, sys, trio
    from worker.process import start_process
    from worker.start_at import waiting_argv

    async def main():
        command, wait_s = sys.argv[1], float(sys.argv[2])
        await start_process(waiting_argv("/bin/bash", command, wait_s),
                            env={"PATH": "/usr/bin:/bin"}, cap_bytes=1024,
                            kill_grace_s=1, silent_stdin=True)
        os.kill(os.getpid(), signal.SIGKILL)  # dies before the planned time

    trio.run(main)
""")


def test_the_command_starts_at_its_time_though_its_worker_died_before(tmp_path: Path):
    out = tmp_path / "ran"
    command = f'echo "$EPOCHREALTIME $0 [$*]" > {out}; read -r x; echo "stdin rc=$?" >> {out}'
    planned = time.time() + 0.5
    worker = subprocess.run([sys.executable, "-c", DYING_WORKER, command, "0.5"],
                            capture_output=True, text=True, timeout=WAIT_S)
    assert worker.returncode == -9, worker.stderr
    assert time.time() < planned  # the worker was gone before the planned time
    deadline = time.monotonic() + WAIT_S
    while not (out.exists() and "stdin" in out.read_text()):
        assert time.monotonic() < deadline, "the command never ran"
        time.sleep(0.05)
    started, shell, args, *_ = out.read_text().split()
    assert planned <= float(started) < planned + 1.0
    # The job sees what `bash -c COMMAND` sees: no extra arguments, stdin at EOF.
    assert (shell, args) == ("/bin/bash", "[]")
    assert out.read_text().splitlines()[1] == "stdin rc=1"


def test_only_bash_is_trusted_to_wait():
    assert can_wait_in_shell("/bin/bash") and can_wait_in_shell("bash")
    assert not can_wait_in_shell("/bin/sh") and not can_wait_in_shell("/usr/bin/zsh")
    assert waiting_argv("/bin/bash", "true", -1.0)[4] == "0.000000"  # never negative
