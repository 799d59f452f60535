"""A real worker started as root with ``--run-as nobody``: what its jobs run as, what it
refuses, how it stops them, what it logs and counts. CI runs as root; elsewhere skipped."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import uuid

import httpx
import pytest
import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace, encode_kill_value
from cluster.store import RunStatus
from e2e_harness import ROOT, group_members, put_job, wait_registered
from test_e2e_kill import gone_within, record_of, start_run

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="changing user needs root")]

ROOT_WARNING = "the worker runs as root without --run-as"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def uid_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith("Uid:")).split()[1])


async def manual_run(etcd, ks: Keyspace, name: str) -> str:
    run_id = uuid.uuid4().hex
    await etcd.put(ks.trigger(name, run_id), b"{}")
    return run_id


async def refused_count(port: int, reason: str) -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    match = re.search(rf'^scheduler_worker_runs_refused_total{{reason="{reason}"}} (\S+)$',
                      text, re.M)
    assert match, text
    return float(match[1])


@pytest.fixture
async def worker_as_nobody(make_cluster, mysql_url):
    port = free_port()
    cluster = make_cluster(mysql_url, "--kill-grace-s", "1", "--run-as", "nobody",
                           "--allowed-users", "daemon", "--metrics-port", str(port))
    worker = cluster.add_worker("r1")
    ks = Keyspace(cluster.prefix)
    async with open_etcd([cluster.etcd_endpoint]) as etcd:
        await wait_registered(etcd, ks, {"r1"})
        yield etcd, ks, worker, port


async def test_jobs_run_as_nobody_an_allowed_user_as_itself_and_others_are_refused(
        worker_as_nobody, mysql_url):
    etcd, ks, worker, port = worker_as_nobody
    await put_job(etcd, ks, "who", 'id -u; echo "$HOME $USER $LOGNAME"', "@yearly")
    await put_job(etcd, ks, "as-root", "id -u", "@yearly", user="root")
    await put_job(etcd, ks, "as-daemon", "id -u", "@yearly", user="daemon")
    who = await manual_run(etcd, ks, "who")
    refused = await manual_run(etcd, ks, "as-root")
    record = await record_of(mysql_url, refused)
    allowed = await manual_run(etcd, ks, "as-daemon")  # the worker carries on
    assert (record.status, record.exit_code, record.output) == (RunStatus.FAILED, None, "")
    assert "user 'root' is not allowed on this worker (--allowed-users)" in record.err
    assert (await record_of(mysql_url, who)).output == "65534\n/nonexistent nobody nobody\n"
    assert (await record_of(mysql_url, allowed)).output == "1\n"
    assert await refused_count(port, "user_not_allowed") == 1
    assert await refused_count(port, "unknown_user") == 0
    assert worker.alive()
    assert ROOT_WARNING not in worker.log_path.read_text()


@pytest.mark.parametrize("how", ["kill", "timeout"])
async def test_a_job_forking_sleep_as_nobody_is_stopped_completely(worker_as_nobody, mysql_url,
                                                                   how):
    etcd, ks, _, _ = worker_as_nobody
    marker = uuid.uuid4().hex
    extra = {"timeout": 2} if how == "timeout" else {}
    await put_job(etcd, ks, "forks", f"sleep 600 & sleep 600; echo {marker}", "@yearly",
                  **extra)
    run_id, bash = await start_run(etcd, ks, "forks", marker)
    with trio.fail_after(5):
        while len(members := group_members(bash)) < 3:  # bash and both sleeps
            await trio.sleep(0.05)
    assert {uid_of(pid) for pid in members} == {65534}
    if how == "kill":
        await etcd.put(ks.killer("forks"), encode_kill_value(run_id))
    await gone_within(bash, 1.5 if how == "kill" else 5.0)
    assert group_members(bash) == []
    record = await record_of(mysql_url, run_id)
    assert record.status is (RunStatus.KILLED if how == "kill" else RunStatus.TIMEOUT)


async def test_a_root_worker_without_run_as_warns_exactly_once(make_cluster, mysql_url):
    cluster = make_cluster(mysql_url)
    worker = cluster.add_worker("plain")
    ks = Keyspace(cluster.prefix)
    async with open_etcd([cluster.etcd_endpoint]) as etcd:
        await wait_registered(etcd, ks, {"plain"})
        await put_job(etcd, ks, "tick", "true", "* * * * * *")
        await trio.sleep(2.5)  # runs, and a few seconds of life: still one warning
    assert worker.terminate() == 0
    assert worker.log_path.read_text().count(ROOT_WARNING) == 1


def test_an_unknown_run_as_user_exits_2_with_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "worker", "--etcd", "127.0.0.1:1", "--run-as", "no-such-user-x",
         "--spill-dir", str(tmp_path / "spill")],
        capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr == "worker: --run-as no-such-user-x: no such user on this machine\n"
