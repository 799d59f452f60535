"""Workers writing run records to a MariaDB that accepts only TLS.

A worker given the wrong CA must run its jobs anyway, say once, in one line, that the
server's certificate was refused, keep the records and spill them at stop; a worker
given the right CA (``--db-ca``) writes its own records and replays those. The
password comes from ``--db-password-file`` or ``SCHEDULER_DB_PASSWORD`` and is in no
log line and on no command line.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.store import StoreSettings, open_store
from e2e_harness import ROOT, all_records, put_every_second, wait_registered

pytestmark = pytest.mark.slow

REFUSED = "the server's TLS certificate was refused"


def secret_file(path: Path, secret: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secret + "\n")
    return path


async def wait_for(predicate, timeout_s: float, what: str) -> None:
    with trio.fail_after(timeout_s):
        while not predicate():
            await trio.sleep(0.2)


def warnings_about(log: str, text: str) -> list[str]:
    return [line for line in log.splitlines()
            if text in line and (" WARNING " in line or " ERROR " in line)]


async def test_workers_write_over_tls_and_a_wrong_ca_only_delays_the_records(
        make_cluster, mysql_tls, mysql_tls_db, tmp_path, monkeypatch):
    password = mysql_tls.password
    no_password = dataclasses.replace(mysql_tls.url(mysql_tls_db), password=None)
    cluster = make_cluster(no_password.url, "--log-level", "DEBUG")
    ks = Keyspace(cluster.prefix)
    async with open_etcd([cluster.etcd_endpoint]) as etcd:
        # 1. The wrong CA: jobs run, records wait (in memory, then the spill file).
        bad = cluster.add_worker("bad", "--db-ca", str(mysql_tls.other_ca),
                                 "--db-password-file",
                                 str(secret_file(tmp_path / "db-password", password)))
        await wait_registered(etcd, ks, {"bad"})
        await put_every_second(etcd, ks, ["tls-job"], "echo over-tls")
        await wait_for(lambda: REFUSED in bad.log_tail(100_000), 20, "the refusal")
        await trio.sleep(3)  # more fires, more failed writes: still said once
        cmdline = Path(f"/proc/{bad.pid}/cmdline").read_bytes()
        assert bad.alive(), bad.log_tail()
        assert bad.terminate() == 0, bad.log_tail()
        log = bad.log_path.read_text()
        said = warnings_about(log, REFUSED)
        assert len(said) == 1, log
        assert "self-signed certificate in certificate chain" in said[0]
        assert "Traceback" not in log
        assert password.encode() not in cmdline and password not in log
        spilled = (cluster.base_dir / "spill" / "bad.jsonl").read_text()
        assert "over-tls" in spilled

        # 2. The right CA, the password from the environment: new runs are written
        # over TLS, and the spilled ones replayed.
        monkeypatch.setenv("SCHEDULER_DB_PASSWORD", password)
        good = cluster.add_worker("good", "--db-ca", str(mysql_tls.ca))
        target = mysql_tls.tls_url(mysql_tls_db)

        async def workers_seen() -> set[str]:
            async with open_store(target, StoreSettings(connect_timeout_s=2)) as store:
                return {r.worker for r in await all_records(store)}

        with trio.fail_after(40):
            while await workers_seen() != {"bad", "good"}:
                await trio.sleep(0.5)
        assert good.terminate() == 0, good.log_tail()
    log = good.log_path.read_text()
    assert not warnings_about(log, "run store"), log
    assert password not in log and "Traceback" not in log


@pytest.mark.parametrize("module", ["worker", "master"])
@pytest.mark.parametrize("ca, reason", [
    ("missing.pem", "cannot read the CA file {path}: No such file or directory"),
    ("garbage.pem", "cannot use the CA file {path}: NO_CERTIFICATE_OR_CRL_FOUND "
                    "(not a PEM certificate)"),
])
def test_an_unusable_ca_file_stops_the_start_with_one_line(module, ca, reason, tmp_path):
    path = tmp_path / ca
    if ca == "garbage.pem":
        path.write_text("not a certificate\n")
    env = {**os.environ, "SCHEDULER_DB_PASSWORD": "Pw-never-shown"}
    done = subprocess.run(
        [sys.executable, "-m", module, "--etcd", "127.0.0.1:9", "--db",
         "mysql://sched@127.0.0.1:9/runs", "--db-ca", str(path)],
        capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    url = f"mysql://sched:***@127.0.0.1:9/runs?ssl-ca={path}"  # the password: hidden
    assert done.stderr == f"{module}: run store {url}: TLS failed: {reason.format(path=path)}\n"
    assert "Pw-never-shown" not in done.stderr + done.stdout
