"""How a run's process becomes its job's user (``run_as``) while the worker stays root.

Where the change of user happens, and why there:

- A held bash run (``start_at``) is one process that first waits for the worker's
  word and, if the worker died, runs the orphan script, which settles the run with
  etcd using the worker's credentials; only then does it ``exec`` the command. The
  waiting and the orphan must stay the worker's (the job must not read those
  credentials, or ptrace a process that holds them), so the user changes at that
  final ``exec``: the wrapper execs ``setpriv`` (util-linux), which sets the groups
  (numeric: exactly those resolved by ``run_as``, like initgroups), the gid, then the
  uid, clears the inheritable capabilities, and execs the launcher below. Same pid,
  same process group and session: the worker, still root, kills and times out the
  whole group as before.
- Any other shell: the process is spawned as the user (``Popen``'s ``user``,
  ``group``, ``extra_groups``: set in the child before its ``exec``), in the user's
  working directory, with the job's environment. Nothing runs as root in between.

The environment. The root part of a held run (bash waiting, the orphan, ``setpriv``)
must not run with the job's environment: a job may set ``LD_PRELOAD``, ``SHELLOPTS``
with ``PS4``, ``GCONV_PATH``..., which would run the job's code as root. So it gets
only ``root_env()`` (the worker's ``PATH``), and the job's environment is written to a
memfd (never a command line: ``/proc/*/cmdline`` is world-readable). After the change
of user, a tiny ``perl`` launcher (``perl-base`` is essential on Debian and starts in
~1-2 ms, where Python takes tens) reads it from that fd, makes it its whole
environment, closes the fd, changes to the user's working directory (as the user: no
access root has and the user lacks), and ``exec``s ``bash -c COMMAND``. A failure there
is the job's: a message on its stderr, exit 127.

Not set: ``--no-new-privs``. A job may use the setuid programs its user may use
(``sudo``, ``ping``); the boundary is the user, not the programs it may run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

from .run_as import Account, Tools

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# @ARGV: the environment's fd, the working directory, then the command's argv.
# The environment: NUL-separated NAME=value records (names never hold '=').
_LAUNCHER = (
    'my ($fd, $dir, @argv) = @ARGV;'
    'open(my $in, "<&=", $fd) or do { print STDERR "scheduler: no job environment: $!\\n";'
    ' exit 127 };'
    'my $data = do { local $/; <$in> }; close($in);'
    '%ENV = map { split(/=/, $_, 2) } grep { length } split(/\\0/, $data);'
    'chdir($dir) or chdir("/");'
    'exec { $argv[0] } @argv;'
    'print STDERR "scheduler: cannot start $argv[0]: $!\\n"; exit 127;'
)


def root_env() -> dict[str, str]:
    """The environment of a held run's root part: nothing the job chose."""
    return {"PATH": os.environ.get("PATH") or DEFAULT_PATH}


def launcher(account: Account, tools: Tools, env_fd: int) -> list[str]:
    """The argv prefix that becomes ``account`` and runs what follows it (``argv...``)
    with the environment in ``env_fd`` (``env_file``), in the account's directory."""
    groups = (f"--groups={','.join(map(str, account.groups))}" if account.groups
              else "--clear-groups")
    return [tools.setpriv, f"--regid={account.gid}", groups, f"--reuid={account.uid}",
            "--inh-caps=-all", "--", tools.perl, "-e", _LAUNCHER, "--", str(env_fd),
            account.workdir]


@contextlib.contextmanager
def env_file(env: Mapping[str, str]) -> Iterator[int]:
    """A memfd holding ``env`` for the launcher, read from its start; closed on exit
    (after the spawn: the child has its own copy of the fd)."""
    fd = os.memfd_create("scheduler-job-env")  # close-on-exec until passed on purpose
    try:
        data = b"".join(f"{name}={value}".encode("utf-8", "surrogateescape") + b"\0"
                        for name, value in env.items())
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.lseek(fd, 0, os.SEEK_SET)
        yield fd
    finally:
        os.close(fd)
