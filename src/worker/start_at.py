"""Starting a command at its planned instant from a process spawned ahead of it.

Why: a fire is claimed ``claim_lead_s`` before its time (see the Scheduler). If the
worker then waited in-process and died (SIGKILL, a crash) before the instant, the fire
would be lost: claimed by a dead worker, never started, and only recorded ``lost``
when its lease expires, far past the misfire grace. So the process is spawned at
once, and bash itself waits for the instant, then ``exec``s the job's command in
the same process (same pid and group, so kills and timeouts work as before): once a
fire is granted, it runs even if its worker dies in the meantime.

How bash waits without another process: ``read -t`` on its stdin, a pipe whose write
end bash itself holds too, so no data and no EOF ever come and the read ends by its
timeout alone. Before the ``exec`` the write end is closed and stdin becomes
``/dev/null``, as for every run: the job sees exactly what ``bash -c COMMAND`` sees.

Needs bash (``read -t`` with a fraction, ``{var}>&-``); for another shell the
Executor waits in-process instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

# $0 = the command, $1 = seconds to wait, $2 = the shell, $3 = the write end's fd
# (appended by ``process.start_process(..., silent_stdin=True)``).
_WAIT_THEN_EXEC = 'read -r -t "$1" _; w=$3; exec {w}>&- </dev/null; exec "$2" -c "$0"'


def can_wait_in_shell(shell: str) -> bool:
    return os.path.basename(shell).startswith("bash")


def waiting_argv(shell: str, command: str, wait_s: float) -> Sequence[str]:
    """``shell -c command``, started ``wait_s`` from now by the shell itself; spawn it
    with ``silent_stdin=True``."""
    return [shell, "-c", _WAIT_THEN_EXEC, command, f"{max(wait_s, 0.0):.6f}", shell]
