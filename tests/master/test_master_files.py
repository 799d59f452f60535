"""Nothing a local user can plant for the master (issue #10, point 7): the web UI is the
installed one, never a ``webapp/`` of the working directory; the state directory is
made private or refused; the UI ships in a normal (non-editable) install."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

import services

ROOT = Path(__file__).resolve().parents[2]
PLANTED = b"/* planted */ fetch('/steal?' + sessionStorage.getItem('token'));\n"


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}


def wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code in (200, 503):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the master did not come up:\n" + log.read_text(errors="replace"))


@pytest.fixture
def planted_dir(tmp_path: Path) -> Path:
    """A directory another user could write, holding a whole forged UI."""
    where = tmp_path / "shared"
    for name in ("webapp", "scheduler_webapp"):  # also the installed package's name
        (where / name).mkdir(parents=True)
        (where / name / "app.js").write_bytes(PLANTED)
        (where / name / "index.html").write_text("<script src=app.js></script>planted")
    return where


def test_a_master_started_beside_another_webapp_serves_the_installed_ui(
        tmp_path, planted_dir, etcd_endpoint, etcd_prefix):
    port = services.free_port()
    url = f"http://127.0.0.1:{port}"
    state = tmp_path / "state"
    log = tmp_path / "master.log"
    with open(log, "wb") as out:
        master = subprocess.Popen(
            [sys.executable, "-m", "master", "--etcd", etcd_endpoint, "--prefix", etcd_prefix,
             "--port", str(port), "--state-dir", str(state)],
            cwd=planted_dir, env=clean_env(), stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    try:
        wait_healthy(url, master, log)
        app_js = httpx.get(url + "/app.js", timeout=10)
        index = httpx.get(url + "/", timeout=10)
        static = httpx.get(url + "/static/app.js", timeout=10)
        httpx.get(url + "/api/v1/runs", timeout=10)  # the run store opens: runs.db is made
    finally:
        master.terminate()
        master.wait(30)
    assert app_js.status_code == 200 and app_js.content == (ROOT / "webapp" / "app.js").read_bytes()
    assert static.content == app_js.content
    assert index.status_code == 200 and b"planted" not in index.content
    assert index.content == (ROOT / "webapp" / "index.html").read_bytes()
    # The state directory it made, and the run store in it, are private from creation.
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    made = {p.name: stat.S_IMODE(p.stat().st_mode) for p in state.iterdir()}
    assert "runs.db" in made, log.read_text(errors="replace")[-3000:]
    assert set(made.values()) == {0o600}, made


@pytest.mark.parametrize("mode", [0o777, 0o775])
def test_a_master_refuses_a_state_directory_others_can_write(tmp_path, mode):
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(state, mode)
    done = subprocess.run([sys.executable, "-m", "master", "--etcd", "127.0.0.1:1",
                           "--state-dir", str(state)], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, env=clean_env(), stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"master: state directory {state} is owned by root with mode {mode:04o}; it must be "
        f"owned by root and not be writable by group or others: run 'chown root {state} "
        f"&& chmod 0700 {state}', or choose another directory"]
    assert list(state.iterdir()) == []


def test_a_wheel_ships_the_web_ui(tmp_path):
    """A normal install gets the UI as package data (not only an editable checkout)."""
    tree = tmp_path / "tree"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".state", "build", "*.egg-info", "__pycache__", "node_modules"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                           "--disable-pip-version-check", "-w", str(tmp_path / "dist"),
                           str(tree)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("scheduler-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    ui = {p.name for p in (ROOT / "webapp").iterdir() if p.suffix in (".html", ".js", ".css")}
    assert {"index.html", "app.js", "app.css"} <= ui
    assert {f"scheduler_webapp/{name}" for name in ui} <= names
    assert "master/__main__.py" in names and "cluster/config/_paths.py" in names
    assert not any(n.startswith("webapp/") for n in names)
