"""Starting a command at its planned instant from a process spawned ahead of it.

Why: a fire is claimed ``claim_lead_s`` before its time (see the Scheduler). If the
worker then waited in-process and died (SIGKILL, a crash) before the instant, the fire
would be lost: claimed by a dead worker, never started, and only recorded ``lost``
when its lease expires, far past the misfire grace. So the process is spawned at
once, and bash itself waits for the instant, then ``exec``s ``bash -c COMMAND`` in
the same process (same pid and group, so kills and timeouts work as before): once a
fire is granted, it starts even if its worker dies in the meantime. (Like a run in
progress when its worker dies, it then gets SIGPIPE at its first write to stdout or
stderr, whose reader is gone; a job that writes only to files runs to its end.)

How bash waits without another process: ``read -t`` on its stdin, a pipe whose write
end bash itself holds too, so no data and no EOF ever come and the read ends by its
timeout alone. Then the write end is closed, stdin becomes ``/dev/null`` as for every
run, and ``exec`` starts exactly what ``bash -c COMMAND`` would be: the job's own
process gets the SIGTERM of a kill and its grace, as without the wait. Why not run the
command in the waiting bash (``eval``), saving that second bash start: bash would stay
the job's parent, die at once on SIGTERM, and take the job's kill grace with it.

``BASH_ENV`` (which non-interactive bash sources at start) is kept from the waiting
bash and handed to the real one, so it is sourced once, after the wait, as before.

Needs bash (``read -t`` with a fraction, ``{var}>&-``: bash 4.1+); for another shell
the Executor waits in-process instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

# $0 = the command, $1 = seconds to wait, $2 = the shell, $3 = the job's BASH_ENV (or
# empty), $4 = the write end's fd (appended by ``process.start_process(...,
# silent_stdin=True)``).
_WAIT_THEN_EXEC = ('read -r -t "$1" _; __w=$4; exec {__w}>&- </dev/null; '
                   'if [ -n "$3" ]; then export BASH_ENV="$3"; fi; exec "$2" -c "$0"')


def can_wait_in_shell(shell: str) -> bool:
    return os.path.basename(shell).startswith("bash")


def waiting_argv(shell: str, command: str, wait_s: float, bash_env: str = "") -> Sequence[str]:
    """``shell -c command``, started ``wait_s`` from now by the shell itself; spawn it
    with ``silent_stdin=True`` and an environment without ``BASH_ENV`` (pass its value
    as ``bash_env``)."""
    return [shell, "-c", _WAIT_THEN_EXEC, command, f"{max(wait_s, 0.0):.6f}", shell, bash_env]
