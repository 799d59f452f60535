"""Jobs as another user (``run_as``, ``drop``): the Executor with real processes, as root.

What must hold: a job runs with exactly its user's uid, gid and groups, and its HOME,
USER and LOGNAME; the root part of a held run never sees the job's environment; kills
and timeouts still reach the whole group; a user the worker does not allow, or does
not know, fails the run with a clear record and the worker carries on.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from cluster.config import Config
from cluster.store import RunStatus
from executor_testkit import WAIT_S, executor, make_run, read_fifo
from test_process import live_members, wait_group_gone
from worker.executor import run_as
from worker.executor.messages import KillRun, StartRun
from worker.executor.run_as import JobUsers, lookup_account

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="changing user needs root (CI is root)")
SHELLS = ["/bin/bash", "/bin/sh"]  # held (the drop at the final exec) and spawned as the user
NOBODY = pwd.getpwnam("nobody")
DAEMON = pwd.getpwnam("daemon")  # its home, /usr/sbin, exists: jobs start there


def users(**settings) -> JobUsers:
    return JobUsers.from_config(dataclasses.replace(Config(), **settings))


def groups_of(entry: pwd.struct_passwd) -> str:
    return " ".join(map(str, sorted(set(os.getgrouplist(entry.pw_name, entry.pw_gid)))))


@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    """A directory only nobody (and root) can write: where its jobs leave traces."""
    path = Path(tempfile.mkdtemp(prefix="runas-", dir="/tmp"))
    os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    yield path
    shutil.rmtree(path)


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


# -- who ----------------------------------------------------------------------------------


@needs_root
@pytest.mark.parametrize("shell", SHELLS)
async def test_run_as_nobody_runs_as_nobody_with_its_groups_home_and_names(shell):
    run = make_run("who", 'id -u; id -g; id -G; echo "$HOME $USER $LOGNAME"; pwd')
    async with executor(users(run_as="nobody"), bash_path=shell) as h:
        await h.send(StartRun(run))
        record = await h.record()
    assert record.status is RunStatus.SUCCEEDED, record.err
    assert record.output.splitlines() == [
        "65534", str(NOBODY.pw_gid), groups_of(NOBODY),
        f"{NOBODY.pw_dir} nobody nobody",
        "/",  # its home, /nonexistent, is not a directory
    ]


@needs_root
@pytest.mark.parametrize("shell", SHELLS)
async def test_an_allowed_user_runs_as_that_user_in_its_home(shell):
    run = make_run("daemon-job", 'id -u; id -G; echo "$HOME $USER $LOGNAME"; pwd',
                   user="daemon")
    async with executor(users(run_as="nobody", allowed_users=("daemon",)),
                        bash_path=shell) as h:
        await h.send(StartRun(run))
        record = await h.record()
    assert record.status is RunStatus.SUCCEEDED, record.err
    assert record.output.splitlines() == [
        str(DAEMON.pw_uid), groups_of(DAEMON), f"{DAEMON.pw_dir} daemon daemon",
        DAEMON.pw_dir]


@needs_root
async def test_a_job_naming_the_run_as_user_needs_no_allowance():
    run = make_run("self", "id -u", user="nobody")
    async with executor(users(run_as="nobody")) as h:
        await h.send(StartRun(run))
        record = await h.record()
    assert (record.status, record.output) == (RunStatus.SUCCEEDED, "65534\n")


@needs_root
async def test_the_jobs_own_env_may_override_home():
    run = make_run("home", 'echo "$HOME $USER"', env={"HOME": "/tmp"})
    async with executor(users(run_as="nobody")) as h:
        await h.send(StartRun(run))
        record = await h.record()
    assert record.output == "/tmp nobody\n"


# -- refused ------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
async def test_a_user_not_allowed_fails_the_run_clearly_and_the_worker_carries_on(shell,
                                                                                 tmp_path):
    marker = tmp_path / "ran"
    refused = make_run("as-daemon", f"touch {marker}", user="daemon")
    async with executor(JobUsers.as_worker(), bash_path=shell) as h:
        await h.send(StartRun(refused))
        record = await h.record()
        await h.send(StartRun(make_run("next", "echo still here")))
        after = await h.record()
        stats = h.executor.statistics_detail()
    assert (record.status, record.exit_code, record.start_time) == (RunStatus.FAILED, None, None)
    assert record.err == ("[scheduler] run failed before it started: user 'daemon' is not "
                          "allowed on this worker (--allowed-users)")
    assert not marker.exists()
    assert refused not in h.marks.asked  # refused before anything: never marked started
    assert (after.status, after.output) == (RunStatus.SUCCEEDED, "still here\n")
    assert (stats.user_not_allowed, stats.unknown_user) == (1, 0)


async def test_an_allowed_user_missing_on_this_machine_fails_the_run_clearly():
    refused = make_run("ghost", "true", user="no-such-user-x")
    job_users = JobUsers(default=None, allowed=frozenset({"no-such-user-x"}), own_name="me",
                         tools=None, warning=None)
    async with executor(job_users) as h:
        await h.send(StartRun(refused))
        record = await h.record()
        stats = h.executor.statistics_detail()
    assert (record.status, record.exit_code) == (RunStatus.FAILED, None)
    assert "user 'no-such-user-x' does not exist on this worker" in record.err
    assert (stats.user_not_allowed, stats.unknown_user) == (0, 1)


# -- environment --------------------------------------------------------------------------


@pytest.mark.parametrize("dropped", [False, True])
async def test_worker_secrets_are_not_in_a_jobs_environment(monkeypatch, dropped):
    if dropped and os.geteuid() != 0:
        pytest.skip("changing user needs root")
    for name in ("SCHEDULER_DB_PASSWORD", "SCHEDULER_ETCD_PASSWORD", "SCHEDULER_API_TOKEN",
                 "SCHEDULER_DB_URL"):
        monkeypatch.setenv(name, "s3cret-value")
    monkeypatch.setenv("INHERITED", "kept")
    dump = 'env; echo ---; compgen -e; echo ---; printf "%s|" "$FOO" "$MULTI" "$INHERITED"'
    run = make_run("env", dump, env={"FOO": "a=b c", "MULTI": "line1\nline2"})
    job_users = users(run_as="nobody") if dropped else JobUsers.as_worker()
    async with executor(job_users) as h:
        await h.send(StartRun(run))
        record = await h.record()
    printed, names, values = record.output.split("---\n")
    assert "s3cret-value" not in printed and f"SCHEDULER_RUN_ID={run.fire.run_id}" in printed
    assert {n for n in names.split() if n.startswith("SCHEDULER_")} == {
        "SCHEDULER_JOB_NAME", "SCHEDULER_RUN_ID", "SCHEDULER_PLAN_TIME_MS",
        "SCHEDULER_TRIGGER", "SCHEDULER_ATTEMPT"}
    assert values == "a=b c|line1\nline2|kept|"


@needs_root
async def test_the_root_part_of_a_held_run_never_sees_the_jobs_environment(nobody_dir):
    """Bash sources BASH_ENV at start and traces with SHELLOPTS=xtrace: had the waiting
    wrapper (root) the job's environment, it would source the file as root, and trace
    its own lines. Only the job's own bash, as nobody, may do either."""
    trace = nobody_dir / "sourced"
    script = nobody_dir / "env.sh"
    script.write_text(f"id -u >> {trace}\n")
    run = make_run("bash-env", "true", env={"BASH_ENV": str(script), "SHELLOPTS": "xtrace"})
    async with executor(users(run_as="nobody")) as h:
        await h.send(StartRun(run))
        record = await h.record()
    assert record.status is RunStatus.SUCCEEDED, record.err
    assert trace.read_text().split() == ["65534"]
    assert "+ true" in record.err and "__go" not in record.err


# -- kill and timeout ---------------------------------------------------------------------


@needs_root
@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("how", ["kill", "timeout"])
async def test_a_dropped_job_with_a_background_child_is_stopped_whole(nobody_dir, shell, how):
    fifo = nobody_dir / "pid.fifo"
    os.mkfifo(fifo)
    os.chown(fifo, NOBODY.pw_uid, NOBODY.pw_gid)
    extra = {"timeout": 2} if how == "timeout" else {}
    run = make_run("sleepers", f"echo $$ > {fifo}; sleep 600 & sleep 600", **extra)
    async with executor(users(run_as="nobody"), bash_path=shell) as h:
        await h.send(StartRun(run))
        pgid = int(await read_fifo(fifo))
        with trio.fail_after(WAIT_S):
            while len(members := live_members(pgid)) < 3:  # the shell and both sleeps
                await trio.sleep(0.02)
        assert {uid_of(pid) for pid in members} == {NOBODY.pw_uid}
        if how == "kill":
            await h.send(KillRun("sleepers", run.fire.run_id))
        record = await h.record()
        await wait_group_gone(pgid, within_s=1.0)
    assert record.status is (RunStatus.KILLED if how == "kill" else RunStatus.TIMEOUT)
    assert live_members(pgid) == []


# -- start-up checks ----------------------------------------------------------------------


def test_an_unknown_run_as_user_is_one_clear_line():
    with pytest.raises(run_as.UnknownRunAsUser, match="^--run-as no-such-user-x: no such "
                       "user on this machine$"):
        users(run_as="no-such-user-x")


def test_a_worker_not_root_refuses_another_run_as_user_but_not_itself(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: DAEMON.pw_uid)  # as if started as daemon
    with pytest.raises(run_as.NeedsRoot, match="^--run-as nobody: the worker runs as "
                       "daemon, not root"):
        users(run_as="nobody")
    with pytest.raises(run_as.NeedsRoot, match="^--allowed-users nobody,root: "):
        users(allowed_users=("daemon", "nobody", "root"))
    own = users(run_as="daemon", allowed_users=("daemon",))
    assert own.tools is None and own.warning is None  # nothing to change, nothing to warn


@needs_root
def test_root_without_run_as_is_warned_and_with_it_is_not():
    assert "without --run-as" in users().warning
    assert users(run_as="nobody").warning is None
    tools = users(run_as="nobody").tools
    assert tools is not None and os.path.isabs(tools.setpriv) and os.path.isabs(tools.perl)


def test_lookup_account_resolves_groups_like_initgroups():
    account = lookup_account("daemon")
    assert (account.uid, account.gid, account.home) == (DAEMON.pw_uid, DAEMON.pw_gid,
                                                        DAEMON.pw_dir)
    assert " ".join(map(str, account.groups)) == groups_of(DAEMON)
    assert account.env() == {"HOME": DAEMON.pw_dir, "USER": "daemon", "LOGNAME": "daemon"}


def test_python_m_worker_not_root_with_another_run_as_user_exits_2_in_one_line(
        monkeypatch, capsys, tmp_path):
    from worker.__main__ import main
    monkeypatch.setattr(os, "geteuid", lambda: DAEMON.pw_uid)
    code = main(["--etcd", "127.0.0.1:1", "--run-as", "nobody",
                 "--spill-dir", str(tmp_path / "spill")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == ("worker: --run-as nobody: the worker runs as daemon, not root, so it "
                   "cannot run jobs as another user; start it as root or drop --run-as\n")
