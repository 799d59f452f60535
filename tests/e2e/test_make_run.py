"""``make run`` in a fresh clone: installs, comes up, runs a job saved with schedctl,
and leaves no process behind after Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import services
from e2e_harness import ROOT, pids_with_cmdline

pytestmark = pytest.mark.slow

INSTALL_TIMEOUT_S = 600


def read_until(process: subprocess.Popen, needle: str, timeout_s: float, seen: list[str]) -> float:
    """Read the process's output lines until one contains ``needle``; when it came."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"make run ended before {needle!r}:\n{''.join(seen)}")
        seen.append(line)
        if needle in line:
            return time.monotonic()
    raise AssertionError(f"no {needle!r} within {timeout_s} s:\n{''.join(seen)}")


def test_make_run_from_a_fresh_clone(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    port, etcd_port = services.free_port(), services.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHEDULER_", "VIRTUAL_ENV"))}
    env |= {"LOCAL_CLUSTER_PORT": str(port), "LOCAL_CLUSTER_ETCD_PORT": str(etcd_port)}
    make = subprocess.Popen(["make", "run"], cwd=clone, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen: list[str] = []
    try:
        started = read_until(make, "starting etcd", INSTALL_TIMEOUT_S, seen)
        read_until(make, "Scheduler is up", 60, seen)
        token = (clone / ".state" / "api-token").read_text().strip()
        schedctl = [str(clone / ".venv" / "bin" / "schedctl"), "--url", f"http://127.0.0.1:{port}",
                    f"--token={token}"]
        put = subprocess.run([*schedctl, "jobs", "put", "hello", "--command", "echo hello",
                              "--cron", "* * * * * *"], capture_output=True, text=True, timeout=30)
        assert put.returncode == 0, put.stderr
        while time.monotonic() - started < 60:
            runs = subprocess.run([*schedctl, "--json", "runs", "--job", "hello"],
                                  capture_output=True, text=True, timeout=30)
            if runs.returncode == 0 and json.loads(runs.stdout)["runs"]:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("no run of 'hello' within 60 s of the start:\n" + "".join(seen))
        assert json.loads(runs.stdout)["runs"][0]["output"] == "hello\n"
    finally:
        os.killpg(make.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        rest, _ = make.communicate(timeout=120)
        seen.append(rest)
    assert "stopped." in "".join(seen)
    time.sleep(0.5)
    assert pids_with_cmdline(str(clone)) == [], "processes left behind after Ctrl-C"
