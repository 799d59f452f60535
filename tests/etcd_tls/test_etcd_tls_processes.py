"""``python -m worker`` and ``python -m master`` against an etcd with TLS, client
certificates and auth on, with a role that covers the cluster's prefix only: two
workers fire a job exactly once per second, a run's orphan script settles its run
through the gateway with the same credentials, the master serves the jobs; and
each wrong setting stops a process at start-up with one line and exit code 2."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import trio
from e2e_harness import (
    ROOT,
    Cluster,
    ServiceProcess,
    all_records,
    check_fires,
    pids_with_cmdline,
    put_every_second,
    start_workers,
    wall_ms,
)
from secure_etcd_kit import USER

import services
from cluster.config import Config
from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.presence import CLAIMED, ORPHANED, RunningInfo
from cluster.store import RunStatus, open_store
from worker.executor import orphan
from worker.executor.orphan_access import orphan_command, write_password_file

WINDOW_S = 20


def start_up(module: str, args: list[str], state_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args, "--state-dir", str(state_dir)],
        capture_output=True, text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL)


def refused_settings(secure_etcd, case: str, tmp_path: Path) -> list[str]:
    flags = secure_etcd.flags()
    if case == "wrong password":
        wrong = tmp_path / "wrong-password"
        wrong.write_text("not-the-password\n")
        wrong.chmod(0o600)
        flags[flags.index("--etcd-password-file") + 1] = str(wrong)
    elif case == "wrong CA":
        flags = secure_etcd.flags(ca=secure_etcd.other_ca)
    elif case == "no client certificate":
        at = flags.index("--etcd-cert")
        del flags[at:at + 4]  # --etcd-cert PATH --etcd-key PATH
    elif case == "expired certificate":
        flags = secure_etcd.flags(cert=secure_etcd.expired)
    elif case == "missing certificate file":
        flags[flags.index("--etcd-cert") + 1] = str(tmp_path / "gone.crt")
    elif case == "certificate with a Common Name":
        flags = secure_etcd.flags(cert=secure_etcd.named)
    return flags


CASES = {  # case -> what the line must say
    "wrong password": "wrong user or password",
    "wrong CA": "does not verify against",
    "no client certificate": "requires a client certificate",
    "expired certificate": "expired on",
    "missing certificate file": "cannot read the etcd client certificate",
    "certificate with a Common Name": "Common Name",  # the worker's orphans' gateway
}


@pytest.mark.parametrize(("module", "case"), [
    (module, case) for module in ("worker", "master") for case in CASES
    if module == "worker" or case != "certificate with a Common Name"  # orphans: workers'
])
def test_a_wrong_setting_stops_the_process_with_one_line_and_exit_2(
        secure_etcd, secure_prefix, tmp_path, module, case):
    args = [*refused_settings(secure_etcd, case, tmp_path), "--prefix", secure_prefix]
    if module == "master":
        args += ["--port", str(services.free_port())]
    done = start_up(module, args, tmp_path / "state")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert lines[0].startswith(f"{module}: ") and CASES[case] in lines[0], lines[0]
    assert secure_etcd.password not in done.stderr


def test_a_prefix_outside_the_role_stops_the_worker(secure_etcd, tmp_path):
    done = start_up("worker", [*secure_etcd.flags(), "--prefix", "/cron/"], tmp_path / "s")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (f"worker: etcd denied read of '/cron/' to user '{USER}': "
                                   "permission denied (its role needs readwrite on the "
                                   "cluster's prefix)")


def test_an_etcd_that_does_not_answer_is_waited_for_as_before(secure_etcd, tmp_path):
    flags = secure_etcd.flags()
    flags[flags.index("--etcd") + 1] = f"127.0.0.1:{services.free_port()}"
    worker = ServiceProcess("w", [*flags, "--prefix", "/secure/x/", "--state-dir",
                                  str(tmp_path / "state")], tmp_path / "w.log").start()
    try:
        deadline = time.monotonic() + 30  # a loaded machine starts a Python slowly
        while "starting anyway, and waiting for it" not in worker.log_tail(1_000_000):
            assert worker.alive() and time.monotonic() < deadline, worker.log_tail()
            time.sleep(0.1)
        time.sleep(2)  # and it goes on waiting, rather than exiting
        assert worker.alive(), worker.log_tail()
    finally:
        # With etcd away a graceful stop waits out its whole grace (it cannot revoke
        # its lease): a second signal stops it at once.
        worker.process.send_signal(signal.SIGTERM)
        time.sleep(1)
        assert worker.terminate() == 0, worker.log_tail()


def secure_config(secure_etcd, prefix: str, state_dir: Path) -> Config:
    return Config(etcd_endpoints=(secure_etcd.endpoint,), prefix=prefix,
                  etcd_ca_file=str(secure_etcd.ca), etcd_cert_file=str(secure_etcd.client.cert),
                  etcd_key_file=str(secure_etcd.client.key), etcd_user=USER,
                  etcd_password=secure_etcd.password, state_dir=str(state_dir))


@pytest.mark.parametrize("cert", ["without a CN", "with a CN"])
async def test_an_orphan_settles_its_run_through_tls_and_auth(secure_etcd, secure_prefix,
                                                             tmp_path, cert):
    config = secure_config(secure_etcd, secure_prefix, tmp_path / "state")
    if cert == "with a CN":  # etcd's gateway refuses it: the orphan must not run
        config = Config(**{**config.__dict__, "etcd_cert_file": str(secure_etcd.named.cert),
                           "etcd_key_file": str(secure_etcd.named.key)})
    write_password_file(config)
    password_file = tmp_path / "state" / "etcd-password"
    assert password_file.stat().st_mode & 0o777 == 0o600
    ks = Keyspace(secure_prefix)
    run = RunningInfo(uuid.uuid4().hex, "job", "w1", 1_700_000_000_000, 1, "schedule", 1,
                      CLAIMED)
    async with open_etcd([secure_etcd.endpoint], access=secure_etcd.access()) as etcd:
        lease = (await etcd.grant_lease(30)).id
        key = ks.running(run.job_name, run.run_id)
        await etcd.put(key, run.to_bytes(), lease_id=lease)
        argv = [*orphan_command(config), key, "w1", str(wall_ms())]
        assert secure_etcd.password not in " ".join(argv)
        env = {"PATH": "/usr/bin:/bin"}  # as a job starts it: no password in it either
        code = await trio.to_thread.run_sync(lambda: subprocess.run(
            argv, env=env, capture_output=True, timeout=30).returncode)
        kv = await etcd.get(key)
    if cert == "with a CN":
        assert code == orphan.REFUSE
        assert RunningInfo.from_bytes(kv.value) == run
    else:
        assert code == orphan.RUN
        assert RunningInfo.from_bytes(kv.value) == run.with_state(ORPHANED)


@pytest.mark.slow
async def test_two_workers_fire_every_second_exactly_once_and_the_master_serves_jobs(
        secure_etcd, secure_prefix, mysql_url, tmp_path, monkeypatch):
    names = ["tick-a", "tick-b"]
    flags = secure_etcd.flags()
    at = flags.index("--etcd-password-file")
    by_env = flags[:at] + flags[at + 2:]  # the workers take their password from the env
    cluster = Cluster(secure_etcd.endpoint, secure_prefix, mysql_url, tmp_path,
                      [*by_env, "--state-dir", str(tmp_path / "state")])
    ks = Keyspace(secure_prefix)
    port = services.free_port()
    try:
        async with open_etcd([secure_etcd.endpoint], access=secure_etcd.access()) as etcd:
            monkeypatch.setenv("SCHEDULER_ETCD_PASSWORD", secure_etcd.password)
            await start_workers(cluster, etcd, ks, ["w0", "w1"])
            monkeypatch.delenv("SCHEDULER_ETCD_PASSWORD")
            master = ServiceProcess("master", [*flags, "--prefix", secure_prefix, "--db",
                                               mysql_url, "--port", str(port)],
                                    tmp_path / "master.log", "master").start()
            cluster.workers.append(master)
            window_start = await put_every_second(etcd, ks, names, "echo fired")
            window_end = window_start + WINDOW_S * 1000
            served = await trio.to_thread.run_sync(wait_for_jobs, port, names)
            assert served == names, cluster.logs()
            for pid in pids_with_cmdline(secure_prefix):  # workers, the master, their runs
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                assert secure_etcd.password.encode() not in cmdline
            await trio.sleep((window_end - wall_ms()) / 1000 + 1.5)
            for process in cluster.workers:
                assert process.alive(), cluster.logs()
            cluster.stop_all()
            assert all(p.process.returncode == 0 for p in cluster.workers), cluster.logs()
    finally:
        cluster.stop_all()
    password_file = tmp_path / "state" / "etcd-password"
    assert password_file.stat().st_mode & 0o777 == 0o600
    assert password_file.read_text().strip() == secure_etcd.password
    async with open_store(mysql_url) as store:
        records = [r for r in await all_records(store)
                   if window_start <= r.plan_time < window_end]
    fires = check_fires(records, names, window_start, window_end)
    assert fires.unexpected == set()
    assert fires.missed == []
    assert fires.repeated == []
    assert {r.status for r in records} == {RunStatus.SUCCEEDED}
    assert {r.worker for r in records} == {"w0", "w1"}


def wait_for_jobs(port: int, names: list[str], timeout_s: float = 30.0) -> list[str]:
    """The job names the master's API lists, once it answers with all of them."""
    deadline = time.monotonic() + timeout_s
    listed: list[str] = []
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/jobs",
                                        timeout=2) as answer:
                body = json.loads(answer.read())
            listed = sorted(job["name"] for job in body["jobs"])
            if listed == sorted(names):
                return listed
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    return listed
