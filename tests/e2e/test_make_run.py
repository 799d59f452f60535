"""``make run`` in a fresh clone: installs, comes up, runs a job saved with schedctl,
and leaves no process behind after Ctrl-C. No process it starts has the API token on
its command line, and everything it creates under .state/ is 0700/0600 (issue #10)."""

from __future__ import annotations

import json
import os
import signal
import stat
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


def session_members(sid: int) -> list[int]:
    """Pids in session ``sid`` (``make run`` and everything it started), from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text()
        except OSError:
            continue
        if int(fields[fields.rindex(")") + 2:].split()[3]) == sid:
            members.append(int(entry.name))
    return members


def cmdlines(pids: list[int]) -> dict[int, str]:
    out = {}
    for pid in pids:
        try:
            out[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            pass  # gone meanwhile
    return out


def loose_modes(state: Path) -> dict[str, str]:
    """Entries under ``state`` that are not a 0700 directory or a 0600 file."""
    loose = {}
    for path in (state, *state.rglob("*")):
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue  # a file rotated away (etcd's WAL, a spill file) while we walked
        mode = stat.S_IMODE(st.st_mode)
        want = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
        if mode != want or not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
            loose[str(path.relative_to(state))] = f"{mode:04o}"
    return loose


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
        started_by_make = cmdlines(sorted(set(session_members(make.pid))
                                          | set(pids_with_cmdline(str(clone)))))
        assert any(" -m master " in c for c in started_by_make.values()), started_by_make
        assert any(" -m worker " in c for c in started_by_make.values()), started_by_make
        assert [c for c in started_by_make.values() if token in c] == []
        assert token not in "".join(seen)  # nor in what it prints (a terminal, a log)
        schedctl = [str(clone / ".venv" / "bin" / "schedctl"), "--url", f"http://127.0.0.1:{port}"]
        with_token = {**env, "SCHEDULER_API_TOKEN": token}
        put = subprocess.run([*schedctl, "jobs", "put", "hello", "--command", "echo hello",
                              "--cron", "* * * * * *"], capture_output=True, text=True,
                             timeout=30, env=with_token)
        assert put.returncode == 0, put.stderr
        while time.monotonic() - started < 60:
            runs = subprocess.run([*schedctl, "--json", "runs", "--job", "hello"],
                                  capture_output=True, text=True, timeout=30, env=with_token)
            if runs.returncode == 0 and json.loads(runs.stdout)["runs"]:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("no run of 'hello' within 60 s of the start:\n" + "".join(seen))
        assert json.loads(runs.stdout)["runs"][0]["output"] == "hello\n"
        running_modes = loose_modes(clone / ".state")  # with runs.db-wal, etcd's files, ...
    finally:
        os.killpg(make.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        rest, _ = make.communicate(timeout=120)
        seen.append(rest)
    assert "stopped." in "".join(seen)
    time.sleep(0.5)
    assert pids_with_cmdline(str(clone)) == [], "processes left behind after Ctrl-C"
    assert running_modes == {} and loose_modes(clone / ".state") == {}
    made = {p.name for p in (clone / ".state").rglob("*")}
    assert {"api-token", "runs.db", "logs", "master.log", "local-1.log", "spill",
            "etcd"} <= made, made
