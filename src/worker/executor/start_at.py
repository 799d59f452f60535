"""A run's process waits for its worker's word, then starts its command at the planned instant.

Why (``start_marks`` has the whole story): a run must be marked ``started`` in etcd
before its command may start, and its process must exist before that mark, or a
worker dying in between would leave a mark with no process behind it. So the process
is spawned first, held: bash waits on its stdin, a pipe only the worker writes, for
one line, the seconds left until the planned instant (``GroupProcess.commit``, sent
once the mark landed). It then waits that long and runs the command. Once told, it
starts even if its worker dies in the meantime; like a run in progress when its
worker dies, it then gets SIGPIPE at its first write to stdout or stderr, whose reader
is gone (a job that writes only to files runs to its end).

If its worker dies before the word, bash reads EOF and runs the orphan script
(``orphan``), which settles the run with etcd as the worker would have and sleeps until
the planned instant: exit 0 = start the command, else bash exits without starting it
(then a survivor runs the fire).

How bash waits without another process: ``read -t`` on a second pipe whose write end
bash itself holds too, so no data and no EOF ever come and the read ends by its timeout
alone (the word's pipe cannot serve: its EOF would end the wait early if the worker
died). Then both ends are closed and stdin becomes ``/dev/null`` as for every run. The
pipes' fds reach bash in ``HELD_FDS_ENV`` (``spawn``); bash first moves the read end to
its lowest free fd, because ``read -t`` selects on it and glibc aborts bash for an fd
of 1024 or more (a busy worker's fds are numbered that high: at 700 fires/s over 2
workers, 511 runs failed with ``bit out of range 0 - FD_SETSIZE on fd_set``).

Two ways to run the command once the wait is over (``held_command`` picks):

- **In the waiting bash itself** (the usual way): the process *is* ``bash -c COMMAND``,
  and the wait is ``held_wait.bash``, which bash sources before the command because
  ``BASH_ENV`` names it; it unsets all it set (``BASH_ENV`` too). The command runs as
  ``bash -c COMMAND`` runs it, because it is that: the same ``$0``, arguments,
  execution string, parsing, and ``exec`` of a lone command (the job's own process
  gets the SIGTERM of a kill and its grace); only ``$_`` differs before the command's
  first step (the wait's last word, not bash's path). Why (issue 14): the earlier way below
  started a second bash at the instant, on the critical path: 1.5 ms of CPU per run
  and 1.5 ms later (word to command p50 3.7 → 2.2 ms, measured on the 2-core machine).
- **A wrapper that ``exec``s it** (``_HELD``): whenever bash might not source
  ``BASH_ENV``, since the command would then start unheld (fail closed): posix mode
  (``POSIXLY_CORRECT``, ``POSIX_PEDANTIC``, ``SHELLOPTS``), Debian's bash reading
  ``~/.bashrc`` instead under ``SSH_CLIENT``/``SSH2_CLIENT`` (a worker started over
  ssh), a wait script missing (an upgrade in place), a shell that failed the probe at
  the Launcher's start (``job_shell_waits``); when the job sets ``BASH_ENV`` itself
  (the real one gets it and sources it once, after the wait); and for a job run as
  another user (``run_as``):
  the final ``exec`` goes through a launcher (``drop``) that changes user first, while
  the wait and the orphan stay the worker's. ``exec`` starts exactly what ``bash -c
  COMMAND`` would be. (Running the command in the waiting bash with ``eval`` would save
  that second bash start, but bash would stay the job's parent, die at once on SIGTERM,
  and take the job's kill grace with it.)

Needs bash (``read -t`` with a fraction, ``read -u``, ``{var}>&-``: bash 4.1+); for
another shell the Executor marks the run, waits in-process, then spawns it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["HELD_FDS_ENV", "WAIT_SCRIPT", "can_wait_in_shell", "held_command",
           "job_shell_waits"]

PROBE_TIMEOUT_S = 5.0

# The wait pipe's read and write fds, "R W": set by ``spawn`` for a held child.
HELD_FDS_ENV = "__SCHEDULER_HELD_FDS"
# The orphan's argv, shell-quoted, for ``held_wait.bash``.
ORPHAN_ENV = "__SCHEDULER_ORPHAN"
WAIT_SCRIPT = str(Path(__file__).with_name("held_wait.bash"))
# bash skips BASH_ENV in posix mode, which the first three turn on at its start, and
# Debian's bash (SSH_SOURCE_BASHRC) reads ~/.bashrc instead under the last two.
_SKIPS_BASH_ENV = ("POSIXLY_CORRECT", "POSIX_PEDANTIC", "SHELLOPTS", "SSH_CLIENT",
                   "SSH2_CLIENT")
# bash expands BASH_ENV's value before it reads the file: a path must not need quoting.
_EXPANDED = frozenset("$`\\")

# $0 = the command, $1 = the shell, $2 = the job's BASH_ENV (or empty), $3 = N, the
# number of launcher words, $4... = the launcher (N words, ``drop``), then the orphan's
# argv; the wait pipe's fds in HELD_FDS_ENV.
_HELD = (
    f'__h=${{{HELD_FDS_ENV}% *}} __w=${{{HELD_FDS_ENV}#* }}; unset {HELD_FDS_ENV}; '
    'exec {__r}<&"$__h" {__h}<&-; '  # a low fd for read -t's select (held_wait.bash)
    'IFS= TMOUT= read -r __go || __go=; '
    'if [ -z "$__go" ]; then "${@:4+$3}" </dev/null || exit 0; __go=0; fi; '
    'read -r -t "$__go" -u "$__r" _ || :; exec {__r}<&- {__w}>&- </dev/null; '
    'if [ -n "$2" ]; then export BASH_ENV="$2"; fi; exec "${@:4:$3}" "$1" -c "$0"'
)


def can_wait_in_shell(shell: str) -> bool:
    return os.path.basename(shell).startswith("bash")


def job_shell_waits(shell: str) -> bool:
    """Is ``shell`` seen to source the wait script through ``BASH_ENV`` (the script
    unsets the fds' variable)? Asked once, at the Launcher's start: a shell that does
    not would start every command unheld."""
    if _EXPANDED.intersection(WAIT_SCRIPT):
        return False
    read_fd, write_fd = os.pipe()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "BASH_ENV": WAIT_SCRIPT,
           HELD_FDS_ENV: f"{read_fd} {write_fd}", ORPHAN_ENV: "false"}
    try:
        probe = subprocess.run([shell, "-c", f'[ -z "${{{HELD_FDS_ENV}+set}}" ]'],
                               input=b"0\n", env=env, pass_fds=(read_fd, write_fd),
                               capture_output=True, timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        os.close(read_fd)
        os.close(write_fd)
    return probe.returncode == 0


def held_command(shell: str, command: str, orphan_argv: Sequence[str],
                 env: Mapping[str, str], launcher: Sequence[str] = (), *,
                 wait_script: str | None = None) -> tuple[list[str], dict[str, str]]:
    """The argv and environment of ``shell -c command`` held until ``commit``; spawn
    them with ``held=True``. ``orphan_argv`` (not empty) decides, if the worker dies
    first, whether the command starts. ``launcher`` (``drop``): the final ``exec`` is
    ``launcher... shell -c command``. ``wait_script``: ``WAIT_SCRIPT`` if the shell
    passed ``job_shell_waits`` (None: always the wrapper)."""
    if not orphan_argv:
        raise ValueError("a held run needs an orphan command")
    if (wait_script is not None and not launcher and _sources_wait_script(env)
            and os.path.isfile(wait_script)):
        return [shell, "-c", command], {**env, "BASH_ENV": wait_script,
                                        ORPHAN_ENV: shlex.join(orphan_argv)}
    wrapper_env = dict(env)
    bash_env = wrapper_env.pop("BASH_ENV", "")
    return ([shell, "-c", _HELD, command, shell, bash_env, str(len(launcher)), *launcher,
             *orphan_argv], wrapper_env)


def _sources_wait_script(env: Mapping[str, str]) -> bool:
    """Will bash, started with ``env``, source the wait script before the command (the
    shell passed ``job_shell_waits``)?"""
    return "BASH_ENV" not in env and not any(name in env for name in _SKIPS_BASH_ENV)
