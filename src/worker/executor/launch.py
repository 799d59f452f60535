"""How a run starts: its process spawned (held, or at once), its mark, its planned instant.

The protocol (``start_at``, ``start_marks``): a run's process is spawned at once, held;
the run's ``running`` key is marked ``started`` in etcd; then the process is told the
seconds left until the planned instant, and bash waits them out itself before it
``exec``s the command. So a command never starts before its planned time (a scheduled
fire is claimed a little ahead, ``claim_lead_s``), never before etcd says it started
(survivors run a fire again only if it never did), and still starts on time if this
worker dies after telling it; if the worker dies before, the process settles the run
with etcd itself (``orphan``, whose argv this module gives the held process). With a
shell other than bash nothing can hold the process: the Executor marks the run, waits
in-process (``until_planned``), then spawns it.

Who runs it (``run_as``): a job run as another user changes user at the final ``exec``
of a held run (a launcher, ``drop``, its environment passed in a memfd so that the
waiting bash keeps root's), or at the spawn otherwise (``SpawnAs``).

The Executor keeps the order and the bookkeeping (what was killed, when it started);
this module holds the steps, each stopped by a kill through ``ActiveRun.waiting``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import trio

from cluster.config import Config
from cluster.keyspace import Keyspace

from worker.live_output import LiveOutput, Tap
from worker.messages import Fire
from . import drop
from .active import ActiveRun
from .environment import inherited_env, job_env
from .orphan_access import orphan_command
from .process import GroupProcess, start_process
from .run_as import Account, JobUsers
from .spawn import SpawnAs, SpawnFailed
from .start_at import WAIT_SCRIPT, can_wait_in_shell, held_command, job_shell_waits
from .start_marks import Mark, Marks

log = logging.getLogger(__name__)


class Launcher:
    """Spawns the process of a run, held or not, as the job's account."""

    def __init__(self, config: Config, keyspace: Keyspace, worker_id: str,
                 users: JobUsers, live: LiveOutput | None = None) -> None:
        """``live``: where what the runs print goes while they run (None: nowhere)."""
        self._config = config
        self._live = live
        self._keyspace = keyspace
        self._worker_id = worker_id
        self._users = users
        self._orphan = orphan_command(config)
        self._inherited = inherited_env()  # once: the worker's own environment is fixed
        # bash can wait for its word and its instant itself; another shell cannot.
        self.holds = can_wait_in_shell(config.bash_path)
        # ... and in the job's own bash if it is seen to source the wait (``start_at``).
        self._wait_script = (WAIT_SCRIPT if self.holds and job_shell_waits(config.bash_path)
                             else None)
        if self.holds and self._wait_script is None:
            log.warning("%s does not source the wait script through BASH_ENV: every run "
                        "waits in a wrapper bash that execs it (1.5 ms more a run)",
                        config.bash_path)

    async def spawn(self, fire: Fire, account: Account | None) -> GroupProcess:
        """Start the run's process, as ``account`` (``drop``); raises SpawnFailed."""
        tap = None if self._live is None else self._live.tap(fire.run_id)
        try:
            return await self._spawn(fire, account, tap)
        except BaseException:
            if tap is not None:
                tap.close()  # no process owns it
            raise

    async def _spawn(self, fire: Fire, account: Account | None, tap: Tap | None
                     ) -> GroupProcess:
        config, held = self._config, self.holds
        env = job_env(fire, self._inherited, account=account)
        argv: Sequence[str] = [config.bash_path, "-c", fire.spec.command]
        start = functools.partial(
            start_process, cap_bytes=config.output_cap_bytes,
            kill_grace_s=config.kill_grace_s, timeout_s=fire.spec.timeout_s, held=held,
            tap=tap)
        if account is not None and not account.is_current():
            if not held:  # set in the child before its exec, with the job's environment
                return await start(argv, env=env, spawn_as=SpawnAs(
                    cwd=account.workdir, uid=account.uid, gid=account.gid,
                    groups=account.groups))
            assert self._users.tools is not None, "JobUsers found them at start-up"
            try:
                with drop.env_file(env) as fd:  # closed once the child has its copy
                    argv, root_env = held_command(
                        config.bash_path, fire.spec.command, self._orphan_argv(fire),
                        drop.root_env(), launcher=drop.launcher(account, self._users.tools, fd))
                    return await start(argv, env=root_env,
                                       spawn_as=SpawnAs(cwd="/", pass_fds=(fd,)))
            except OSError as exc:  # the memfd (EMFILE...); a failed spawn is SpawnFailed
                raise SpawnFailed(config.bash_path, exc) from exc
        if held:
            argv, env = held_command(config.bash_path, fire.spec.command,
                                     self._orphan_argv(fire), env,
                                     wait_script=self._wait_script)
        workdir = None if account is None else account.workdir
        return await start(argv, env=env, spawn_as=SpawnAs(cwd=workdir))

    def _orphan_argv(self, fire: Fire) -> list[str]:
        key = self._keyspace.running(fire.spec.name, fire.run_id)
        return [*self._orphan, key, self._worker_id, str(fire.planned_ms)]


async def marked(marks: Marks, active: ActiveRun, scope: trio.CancelScope | None = None,
                 after: Mark | None = None) -> bool:
    """Marked started in etcd (``start_marks``); False if its key is gone or it was
    killed before or meanwhile (``scope`` is then cancelled by the kill). ``after``: the
    undecided answer of a queued attempt (``Marks.mark_soon``) it goes on from."""
    if active.cause is not None:
        return False
    try:
        with scope or trio.CancelScope() as active.waiting:
            return await marks.mark(active.run, after)
        return False  # cancelled by the kill
    finally:
        active.waiting = None


async def until_planned(active: ActiveRun, wait_s: float) -> None:
    """A fire claimed ahead of its time (``claim_lead_s``) starts at it, not before."""
    if wait_s <= 0 or active.cause is not None:
        return
    with trio.CancelScope() as active.waiting:  # cancelled by a kill
        await trio.sleep(wait_s)
    active.waiting = None
