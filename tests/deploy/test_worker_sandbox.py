"""The worker unit's privileges, applied for real: a root worker with exactly the unit's
CapabilityBoundingSet and NoNewPrivileges (set here with setpriv, as systemd would)
still runs every job as its --run-as user and still kills a job that overruns; and,
as the unit's comment says, a set-user-ID program run by a job gains nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import trio

from cluster.keyspace import Keyspace
from units import UNITS, one, settings

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="changing user needs root")

NOBODY = 65534


def sandbox_argv() -> list[str]:
    """setpriv options for what the worker unit grants: its bounding set, no_new_privs."""
    unit = settings(UNITS["worker"])
    assert one(unit, "Service.NoNewPrivileges") == "yes"
    caps = [c.removeprefix("CAP_").lower() for c in
            one(unit, "Service.CapabilityBoundingSet").split()]
    return ["setpriv", "--no-new-privs", f"--bounding-set=-all,{','.join('+' + c for c in caps)}",
            "--inh-caps=-all", "--"]


def records(db: Path) -> dict[str, tuple[str, str]]:
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT job_name, status, output, err FROM job_log").fetchall()
    except sqlite3.OperationalError:  # the worker has not made its table yet
        return {}
    return {name: (status, output or err) for name, status, output, err in rows}


async def test_the_unit_s_privileges_let_run_as_work_and_setuid_gain_nothing(
        tmp_path, etcd, etcd_endpoint, etcd_prefix):
    tools = Path(tempfile.mkdtemp(prefix="scheduler-suid-"))  # pytest's tmp is 0700
    tools.chmod(0o755)  # nobody must reach the tool
    try:
        await check_sandbox(tools, tmp_path, etcd, etcd_endpoint, etcd_prefix)
    finally:
        shutil.rmtree(tools)


async def check_sandbox(tools: Path, tmp_path: Path, etcd, etcd_endpoint: str,
                        etcd_prefix: str) -> None:
    suid_id = tools / "id-suid"
    shutil.copy("/usr/bin/id", suid_id)
    suid_id.chmod(0o4755)  # set-user-ID root: without no_new_privs it reports euid 0
    check = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                            "--clear-groups", str(suid_id), "-u"],
                           capture_output=True, text=True, check=True)
    if check.stdout != "0\n":
        pytest.skip(f"{tools} does not honour set-user-ID bits (nosuid?)")

    state = tmp_path / "state"
    log = tmp_path / "worker.log"
    ks = Keyspace(etcd_prefix)
    jobs = {"whoami": "id -u", "suid": f"{suid_id} -u", "overrun": "sleep 60"}
    for name, command in jobs.items():
        spec = {"name": name, "command": command, "cronExpr": "@every 1h",
                "timeout": 1 if name == "overrun" else 0}
        await etcd.put(ks.job(name), json.dumps(spec))
    with open(log, "ab") as out:
        worker = subprocess.Popen(
            [*sandbox_argv(), sys.executable, "-m", "worker", "--etcd", etcd_endpoint,
             "--prefix", etcd_prefix, "--state-dir", str(state), "--run-as", "nobody",
             "--kill-grace-s", "1", "--id", "sandboxed"],
            stdout=out, stderr=out, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        with trio.fail_after(30):
            while not (await etcd.get_prefix(ks.workers_prefix)).kvs:
                assert worker.poll() is None, log.read_text()[-3000:]
                await trio.sleep(0.1)
        for name in jobs:  # run now: no waiting for the hour
            await etcd.put(ks.trigger(name, f"now-{name}"), b"{}")
        deadline = time.monotonic() + 30
        while len(records(state / "runs.db")) < len(jobs) and time.monotonic() < deadline:
            await trio.sleep(0.2)
        got = records(state / "runs.db")
        assert got.keys() == jobs.keys(), log.read_text()[-3000:]
        assert got["whoami"] == ("succeeded", f"{NOBODY}\n")  # setpriv changed user
        assert got["suid"] == ("succeeded", f"{NOBODY}\n")  # the setuid bit was ignored
        assert got["overrun"][0] == "timeout"  # CAP_KILL: nobody's group was killed
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(90) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
