"""A held run whose worker died before telling it to start settles the run with etcd
itself (``worker.executor.orphan``), against a real etcd: it runs iff the run is marked started
by its own compare-and-set or already was; never when the key is gone or not its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.presence import CLAIMED, ORPHANED, STARTED, RunningInfo
from worker.executor import orphan

WAIT_S = 10


def info(worker_id: str = "w1", state: str = CLAIMED) -> RunningInfo:
    return RunningInfo(uuid.uuid4().hex, "job", worker_id, 1_700_000_000_000, 1, "schedule",
                       1, state)


async def put_running(etcd, ks: Keyspace, run: RunningInfo) -> tuple[str, int]:
    lease = (await etcd.grant_lease(30)).id
    key = ks.running(run.job_name, run.run_id)
    await etcd.put(key, run.to_bytes(), lease_id=lease)
    return key, lease


def settle_in_a_process(endpoint: str, key: str, worker_id: str, planned_ms: int) -> int:
    argv = [*orphan.command([endpoint]), key, worker_id, str(planned_ms)]
    # As a job would start it: an environment that must not change what it imports.
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": "/nonexistent", "PYTHONHOME": "/nonexistent"}
    return subprocess.run(argv, env=env, capture_output=True, timeout=WAIT_S).returncode


async def test_a_claimed_run_is_marked_orphaned_and_run_at_its_time(etcd_endpoint, etcd_prefix):
    ks = Keyspace(etcd_prefix)
    async with open_etcd([etcd_endpoint]) as etcd:
        run = info()
        key, lease = await put_running(etcd, ks, run)
        planned_ms = time.time_ns() // 1_000_000 + 500
        code = await trio.to_thread.run_sync(settle_in_a_process, etcd_endpoint, key, "w1",
                                             planned_ms)
        settled_at_ms = time.time_ns() // 1_000_000
        kv = await etcd.get(key)
    assert code == orphan.RUN
    assert settled_at_ms >= planned_ms  # it slept until the planned instant
    assert RunningInfo.from_bytes(kv.value) == run.with_state(ORPHANED)
    assert kv.lease_id == lease  # it still goes with the dead worker's lease


@pytest.mark.parametrize("case", ["started", "gone", "another worker's"])
async def test_it_runs_only_what_was_its_own_and_started(etcd_endpoint, etcd_prefix, case):
    ks = Keyspace(etcd_prefix)
    async with open_etcd([etcd_endpoint]) as etcd:
        run = info(worker_id="w2" if case == "another worker's" else "w1",
                   state=STARTED if case == "started" else CLAIMED)
        key, lease = await put_running(etcd, ks, run)
        if case == "gone":
            await etcd.revoke_lease(lease)
        code = await trio.to_thread.run_sync(settle_in_a_process, etcd_endpoint, key, "w1", 0)
        kv = await etcd.get(key)
    assert code == (orphan.RUN if case == "started" else orphan.REFUSE)
    if kv is not None:
        assert RunningInfo.from_bytes(kv.value) == run  # untouched


def test_an_unreachable_etcd_means_do_not_run():
    gateway = orphan.Gateway(["127.0.0.1:1"], time.monotonic() + 0.3)
    with pytest.raises(orphan.Unreachable):
        orphan.settle(gateway, "/cron/running/job/r1", "w1")
    assert orphan.main(["127.0.0.1:1", "/k", "w1", "not-a-number"]) == orphan.REFUSE


# argv: endpoint, key, worker id, planned ms, command, revoke first (1/0)
DYING_WORKER = textwrap.dedent("""
    import os, signal, sys, trio
    from worker.executor import orphan
    from worker.executor.process import start_process
    from worker.executor.start_at import WAIT_SCRIPT, held_command

    async def main():
        endpoint, key, worker_id, planned_ms, command = sys.argv[1:6]
        settle = [*orphan.command([endpoint]), key, worker_id, planned_ms]
        argv, env = held_command("/bin/bash", command, settle, {"PATH": "/usr/bin:/bin"},
                                 wait_script=WAIT_SCRIPT)
        await start_process(argv, env=env, cap_bytes=1024, kill_grace_s=1, held=True)
        os.kill(os.getpid(), signal.SIGKILL)  # after the claim, before the mark

    trio.run(main)
""")


@pytest.mark.parametrize("lease_alive", [True, False])
async def test_a_worker_killed_between_claim_and_mark(etcd_endpoint, etcd_prefix, tmp_path: Path,
                                                      lease_alive: bool):
    """The whole path: its process runs the command on time iff the claim is still there
    (then marked started, so survivors record it lost and never run it again); with the
    key gone, survivors run it and this process must not."""
    ks = Keyspace(etcd_prefix)
    out = tmp_path / "ran"
    async with open_etcd([etcd_endpoint]) as etcd:
        run = info()
        key, lease = await put_running(etcd, ks, run)
        if not lease_alive:
            await etcd.revoke_lease(lease)
        planned_ms = time.time_ns() // 1_000_000 + 700
        worker = await trio.to_thread.run_sync(lambda: subprocess.run(
            [sys.executable, "-c", DYING_WORKER, etcd_endpoint, key, "w1", str(planned_ms),
             f'echo "$EPOCHREALTIME" > {out}'], capture_output=True, text=True, timeout=WAIT_S))
        assert worker.returncode == -9, worker.stderr
        with trio.move_on_after(3.0):
            while not (out.exists() and out.read_text().strip()):
                await trio.sleep(0.05)
        kv = await etcd.get(key)
    if lease_alive:
        assert planned_ms / 1000 <= float(out.read_text()) < planned_ms / 1000 + 1.0
        assert RunningInfo.from_bytes(kv.value).state == ORPHANED
    else:
        assert not out.exists() and kv is None


# argv: endpoint, key, worker id, planned ms, command, user: as DYING_WORKER, but the
# command is to run as ``user`` (``drop``), the worker (root) keeping the rest.
DYING_WORKER_AS = textwrap.dedent("""
    import os, signal, sys, trio
    from worker.executor import drop, orphan
    from worker.executor.process import start_process
    from worker.executor.spawn import SpawnAs
    from worker.executor.run_as import find_tools, lookup_account
    from worker.executor.start_at import held_command

    async def main():
        endpoint, key, worker_id, planned_ms, command, user = sys.argv[1:7]
        settle = [*orphan.command([endpoint]), key, worker_id, planned_ms]
        env = {"PATH": "/usr/bin:/bin", "FROM_JOB": "yes"}
        with drop.env_file(env) as fd:
            launcher = drop.launcher(lookup_account(user), find_tools(), fd)
            argv, root_env = held_command("/bin/bash", command, settle, drop.root_env(),
                                          launcher=launcher)
            await start_process(argv, env=root_env, cap_bytes=1024, kill_grace_s=1,
                                held=True, spawn_as=SpawnAs(cwd="/", pass_fds=(fd,)))
        os.kill(os.getpid(), signal.SIGKILL)  # after the claim, before the mark

    trio.run(main)
""")


@pytest.mark.skipif(os.geteuid() != 0, reason="changing user needs root (CI is root)")
async def test_an_orphaned_run_still_starts_its_command_as_the_jobs_user(etcd_endpoint,
                                                                         etcd_prefix):
    """The orphan settles the run as the worker's user (root), then the command starts
    as the job's user, on time, with the job's environment."""
    ks = Keyspace(etcd_prefix)
    outdir = Path(tempfile.mkdtemp(prefix="orphan-as-", dir="/tmp"))
    os.chown(outdir, 65534, 65534)  # nobody: only the job's user (and root) writes there
    out = outdir / "ran"
    try:
        async with open_etcd([etcd_endpoint]) as etcd:
            run = info()
            key, _ = await put_running(etcd, ks, run)
            planned_ms = time.time_ns() // 1_000_000 + 700
            worker = await trio.to_thread.run_sync(lambda: subprocess.run(
                [sys.executable, "-c", DYING_WORKER_AS, etcd_endpoint, key, "w1",
                 str(planned_ms), f'echo "$EPOCHREALTIME $(id -u) $FROM_JOB" > {out}',
                 "nobody"], capture_output=True, text=True, timeout=WAIT_S))
            assert worker.returncode == -9, worker.stderr
            with trio.move_on_after(3.0):
                while not (out.exists() and out.read_text().strip()):
                    await trio.sleep(0.05)
            kv = await etcd.get(key)
        started, uid, from_job = out.read_text().split()
        assert planned_ms / 1000 <= float(started) < planned_ms / 1000 + 1.0
        assert (uid, from_job) == ("65534", "yes")
        assert out.stat().st_uid == 65534
        assert RunningInfo.from_bytes(kv.value).state == ORPHANED
    finally:
        shutil.rmtree(outdir)


def test_its_command_line_names_files_never_the_password(tmp_path):
    password_file = tmp_path / "pw"
    password_file.write_text("s3cret\n")
    argv = orphan.command(["127.0.0.1:2379"], ca_file="/ca.pem", cert_file="/c.pem",
                          key_file="/k.pem", user="scheduler", password_file=str(password_file))
    access, rest = orphan.parse_argv([*argv[3:], "/k", "w1", "0"])
    assert "s3cret" not in " ".join(argv)
    assert access == orphan.Access("/ca.pem", "/c.pem", "/k.pem", "scheduler", "s3cret")
    assert rest == ["127.0.0.1:2379", "/k", "w1", "0"]
    # An unknown option, or a password file it cannot read: do not run.
    assert orphan.main(["--password=s3cret", "127.0.0.1:1", "/k", "w1", "0"]) == orphan.REFUSE
    assert orphan.main([f"--password-file={tmp_path / 'none'}", "--user=u", "127.0.0.1:1",
                        "/k", "w1", "0"]) == orphan.REFUSE
