"""Starting a command at its planned instant from a process spawned ahead of it.

Why: a fire is claimed ``claim_lead_s`` before its time (see the Scheduler). If the
worker then waited in-process and died (SIGKILL, a crash) before the instant, the fire
would be lost: claimed by a dead worker, never started, and only recorded ``lost``
when its lease expires, far past the misfire grace. So the process is spawned at
once, and bash itself waits for the instant, then runs the job's command in the same
process (same pid and group, so kills and timeouts work as before): once a fire is
granted, it runs even if its worker dies in the meantime.

How bash waits without another process: ``read -t`` on its stdin, a pipe whose write
end bash itself holds too, so no data and no EOF ever come and the read ends by its
timeout alone. Then the write end is closed, stdin becomes ``/dev/null`` as for every
run, and the command runs in that same bash (``eval``), with ``$0`` and the positional
parameters as ``bash -c COMMAND`` has them (see ``_WAIT_THEN_EXEC`` for what differs).

Needs bash 5 (``read -t`` with a fraction, ``{var}>&-``, ``BASH_ARGV0``); for another shell the
Executor waits in-process instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

# $0 = the command, $1 = seconds to wait, $2 = the shell, $3 = the write end's fd
# (appended by ``process.start_process(..., silent_stdin=True)``).
# The command then runs in this same bash through ``eval`` (a second bash start would
# double the spawn cost of a burst), with $0 and the positional parameters reset. What
# differs from ``bash -c COMMAND``: the shell variable ``__c`` (not exported) holds the
# command, and a syntax error is reported by ``eval`` rather than ``-c``.
_WAIT_THEN_EXEC = ('read -r -t "$1" _; __w=$3; exec {__w}>&- </dev/null; __c=$0; '
                   'BASH_ARGV0=$2; set --; unset __w; eval "$__c"')


def can_wait_in_shell(shell: str) -> bool:
    return os.path.basename(shell).startswith("bash")


def waiting_argv(shell: str, command: str, wait_s: float) -> Sequence[str]:
    """``shell -c command``, started ``wait_s`` from now by the shell itself; spawn it
    with ``silent_stdin=True``."""
    return [shell, "-c", _WAIT_THEN_EXEC, command, f"{max(wait_s, 0.0):.6f}", shell]
