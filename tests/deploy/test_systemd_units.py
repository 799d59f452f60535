"""The systemd units in deploy/: systemd accepts them, they start the programs they name
with settings those programs accept, they are hardened as README promises, and their
stop timeouts cover the processes' own shutdown budgets."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.config import config_from_cli
from cluster.startup import parse_process_args
from master.app import total_grace_s
from units import (
    DEPLOY,
    INSTALL_PREFIX,
    UNITS,
    credentials,
    env_file,
    exec_argv,
    one,
    render,
    seconds,
    settings,
)
from worker.shutdown_budget import ShutdownBudget

SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
VENV = Path(sys.prefix)  # the test venv: it has the entry points the units run


def test_systemd_analyze_verify_accepts_both_units_without_a_warning(tmp_path):
    rendered = [render(path, str(VENV), tmp_path) for path in UNITS.values()]
    for path in rendered:
        program = exec_argv(settings(path), credentials_dir=tmp_path, state_root=tmp_path)[0]
        assert Path(program).is_file(), f"{program}: reinstall the project (pip install -e .)"
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", *map(str, rendered)],
                            capture_output=True, text=True, timeout=60)
    # verify exits 0 on an unknown key or a bad value (it ignores them, with a line on
    # stderr): so nothing on stderr either.
    assert (result.returncode, result.stderr) == (0, "")


def test_verify_refuses_a_unit_whose_program_is_missing(tmp_path):
    """Why the test above renders the units: as written they name /opt/scheduler."""
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", str(UNITS["worker"])],
                            capture_output=True, text=True, timeout=60)
    if Path(INSTALL_PREFIX, "bin", "scheduler-worker").exists():
        pytest.skip("this machine has the units' install prefix")
    assert result.returncode != 0
    assert "scheduler-worker is not executable" in result.stderr


@pytest.mark.parametrize("role", ["master", "worker"])
def test_exec_start_runs_the_installed_entry_point_with_settings_it_accepts(role, tmp_path):
    unit = settings(UNITS[role])
    creds = tmp_path / "credentials"
    creds.mkdir()
    for cred_id in credentials(unit):  # what systemd would copy there
        (creds / cred_id).write_text(f"secret-{cred_id}\n")
    argv = exec_argv(unit, credentials_dir=creds, state_root=tmp_path)
    assert argv[0] == f"{INSTALL_PREFIX}/bin/scheduler-{role}"
    named = {arg.removeprefix(f"{creds}/") for arg in argv if arg.startswith(f"{creds}/")}
    assert named == set(credentials(unit)), "each credential is used, each one used is loaded"
    env = env_file(DEPLOY / "scheduler.env.example")
    config = config_from_cli(parse_process_args(role, "", argv[1:]), env=env)
    assert config.state_path == tmp_path / f"scheduler-{role}"
    assert one(unit, "Service.StateDirectory") == f"scheduler-{role}"
    assert config.etcd_password == "secret-etcd-password"  # read from the credential
    assert config.db_password == "secret-db-password"
    if role == "master":
        assert config.api_token == "secret-api-token"
    assert config.etcd_endpoints == tuple(env["SCHEDULER_ETCD_ENDPOINTS"].split(","))
    assert not any("secret" in arg for arg in argv), "no secret on the command line"


def test_the_stop_timeouts_cover_each_process_s_shutdown_budget(tmp_path):
    master, worker = settings(UNITS["master"]), settings(UNITS["worker"])
    env = env_file(DEPLOY / "scheduler.env.example")
    argv = exec_argv(worker, credentials_dir=tmp_path, state_root=tmp_path)
    for cred_id in credentials(worker):
        (tmp_path / cred_id).write_text("x\n")
    worker_config = config_from_cli(parse_process_args("worker", "", argv[1:]), env=env)
    budget = ShutdownBudget.from_config(worker_config).total_s
    said = re.search(r"stop takes at most ([\d.]+) s", Path(UNITS["worker"]).read_text())
    assert said and float(said.group(1)) == budget  # the unit's comment says so
    assert seconds(one(worker, "Service.TimeoutStopSec")) > budget
    master_config = config_from_cli(parse_process_args("master", "", ["--metrics-port", "9100"]),
                                    env={})
    assert seconds(one(master, "Service.TimeoutStopSec")) > total_grace_s(master_config)


@pytest.mark.parametrize("role", ["master", "worker"])
def test_units_are_hardened_and_stop_with_sigterm(role):
    unit = settings(UNITS[role])
    for key, value in {"ProtectSystem": "strict", "PrivateTmp": "yes",
                       "NoNewPrivileges": "yes", "KillSignal": "SIGTERM",
                       "Restart": "on-failure", "StateDirectoryMode": "0700"}.items():
        assert one(unit, f"Service.{key}") == value, key
    for cred_path in credentials(unit).values():
        assert cred_path.startswith("/etc/scheduler/credentials/")


def test_the_worker_alone_gets_sigterm_and_keeps_only_the_capabilities_run_as_needs():
    worker, master = settings(UNITS["worker"]), settings(UNITS["master"])
    # control-group would send SIGTERM to every job at once: no drain
    assert one(worker, "Service.KillMode") == "mixed"
    assert "User" not in {k.split(".")[1] for k in worker}  # root, for --run-as
    assert "--run-as" in one(worker, "Service.ExecStart")
    assert set(one(worker, "Service.CapabilityBoundingSet").split()) == {
        "CAP_SETUID", "CAP_SETGID", "CAP_KILL"}
    assert one(master, "Service.User") == "scheduler"
    assert one(master, "Service.CapabilityBoundingSet") == ""
