"""A run's process waits for its worker's word, then starts its command at the planned instant.

Why (``start_marks`` has the whole story): a run must be marked ``started`` in etcd
before its command may start, and its process must exist before that mark, or a
worker dying in between would leave a mark with no process behind it. So the process
is spawned first, held: bash waits on its stdin, a pipe only the worker writes, for
one line, the seconds left until the planned instant (``GroupProcess.commit``, sent
once the mark landed). It then waits that long and ``exec``s ``bash -c COMMAND`` in
the same process (same pid and group: kills and timeouts work as before). Once told,
it starts even if its worker dies in the meantime; like a run in progress when its
worker dies, it then gets SIGPIPE at its first write to stdout or stderr, whose reader
is gone (a job that writes only to files runs to its end).

If its worker dies before the word, bash reads EOF and runs the orphan script
(``orphan``, its argv given here), which settles the run with etcd as the worker would
have and sleeps until the planned instant: exit 0 = start the command, else bash exits
without starting it (then a survivor runs the fire).

How bash waits without another process: ``read -t`` on a second pipe whose write end
bash itself holds too, so no data and no EOF ever come and the read ends by its timeout
alone (the word's pipe cannot serve: its EOF would end the wait early if the worker
died). Then both ends are closed, stdin becomes ``/dev/null`` as for every run, and
``exec`` starts exactly what ``bash -c COMMAND`` would be: the job's own process gets
the SIGTERM of a kill and its grace. (Running the command in the waiting bash with
``eval`` would save that second bash start, but bash would stay the job's parent, die at
once on SIGTERM, and take the job's kill grace with it.)

``BASH_ENV`` (which non-interactive bash sources at start) is kept from the waiting
bash and handed to the real one, so it is sourced once, after the wait.

A job run as another user (``run_as``): the final ``exec`` goes through a launcher
(``drop``) that changes user first; everything before it stays the worker's.

Needs bash (``read -t`` with a fraction, ``read -u``, ``{var}>&-``: bash 4.1+); for
another shell the Executor marks the run, waits in-process, then spawns it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

# $0 = the command, $1 = the shell, $2 = the job's BASH_ENV (or empty), $3 = N, the
# number of launcher words, $4... = the launcher (N words, ``drop``), then the orphan's
# argv, then the wait pipe's read and write fds (appended by
# ``process.start_process(..., held=True)``).
_HELD = (
    '__r=${@: -2:1} __w=${@: -1}; set -- "${@:1:$#-2}"; '
    'IFS= TMOUT= read -r __go || __go=; '
    'if [ -z "$__go" ]; then "${@:4+$3}" </dev/null || exit 0; __go=0; fi; '
    'read -r -t "$__go" -u "$__r" _; exec {__r}<&- {__w}>&- </dev/null; '
    'if [ -n "$2" ]; then export BASH_ENV="$2"; fi; exec "${@:4:$3}" "$1" -c "$0"'
)


def can_wait_in_shell(shell: str) -> bool:
    return os.path.basename(shell).startswith("bash")


def held_argv(shell: str, command: str, orphan_argv: Sequence[str],
              bash_env: str = "", launcher: Sequence[str] = ()) -> Sequence[str]:
    """``shell -c command``, held until ``commit``; spawn it with ``held=True`` and an
    environment without ``BASH_ENV`` (pass its value as ``bash_env``). ``orphan_argv``
    (not empty) decides, if the worker dies first, whether the command starts.
    ``launcher`` (``drop``): the final ``exec`` is ``launcher... shell -c command``."""
    if not orphan_argv:
        raise ValueError("a held run needs an orphan command")
    return [shell, "-c", _HELD, command, shell, bash_env, str(len(launcher)), *launcher,
            *orphan_argv]
