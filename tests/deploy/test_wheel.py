"""The wheel an operator installs: built with ``python -m build``, installed (not
editable) into a fresh venv with its dependencies from the package index pip uses
here, then ``python -m master`` and ``python -m worker`` started from that venv in an
empty directory that has nothing to do with the checkout. The UI must be served from
the installed files, a job saved through the API must run, and both must stop cleanly."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest

import services

# ~20 s here with a warm pip cache; a cold one downloads every dependency.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WEBAPP = ROOT / "webapp"
BUILD_TIMEOUT_S = 300
INSTALL_TIMEOUT_S = 600


def clean_env() -> dict[str, str]:
    """This environment less what would make the venv see the checkout or the test
    venv (pip's own settings, which name the index, stay)."""
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "SCHEDULER_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def build_wheel(out: Path) -> Path:
    result = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                            capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
                            env=clean_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    wheels = list(out.glob("scheduler-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def check_wheel_contents(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        for source in sorted(WEBAPP.rglob("*")):
            if source.is_dir() or "__pycache__" in source.parts:
                continue
            name = f"scheduler_webapp/{source.relative_to(WEBAPP).as_posix()}"
            assert name in infos, f"{name} is not in the wheel"
            mode = infos[name].external_attr >> 16
            assert not stat.S_ISLNK(mode), f"{name} is a link in the wheel"
            assert archive.read(name) == source.read_bytes(), f"{name} differs from webapp/"
        assert "cluster/store/_schema.py" in infos  # the run store's tables
        entry_points = next(archive.read(n).decode() for n in infos
                            if n.endswith(".dist-info/entry_points.txt"))
    for script in ("schedctl", "scheduler-master", "scheduler-worker"):
        assert f"{script} =" in entry_points, entry_points


def make_venv(wheel: Path, venv: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120,
                   env=clean_env())
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)],
                             capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
                             env=clean_env())
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    return python


def start(python: Path, module: str, args: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen([str(python), "-m", module, *args], cwd=cwd, stdout=out,
                                stderr=out, stdin=subprocess.DEVNULL,
                                env={**clean_env(), "PYTHONUNBUFFERED": "1"})


def wait_up(url: str, master: subprocess.Popen, log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert master.poll() is None, f"the master exited:\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the master did not come up in {timeout_s} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen, name: str, log: Path, timeout_s: float) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"{name} ignored SIGTERM for {timeout_s} s:\n{log.read_text()[-3000:]}")


def test_the_wheel_installed_in_a_fresh_venv_serves_the_ui_and_runs_jobs(tmp_path, etcd_endpoint):
    wheel = build_wheel(tmp_path / "dist")
    check_wheel_contents(wheel)
    python = make_venv(wheel, tmp_path / "venv")
    elsewhere = tmp_path / "empty"  # the processes' working directory: nothing in it
    elsewhere.mkdir()
    where = subprocess.run(
        [str(python), "-c", "import master, worker, scheduler_webapp as w; "
         "print(master.__file__, worker.__file__, w.__file__)"],
        cwd=elsewhere, capture_output=True, text=True, timeout=60, env=clean_env(), check=True)
    site = str(tmp_path / "venv" / "lib")
    assert all(path.startswith(site) for path in where.stdout.split()), where.stdout

    state = tmp_path / "state"  # private: both keep runs.db (SQLite) here
    port = services.free_port()
    url = f"http://127.0.0.1:{port}"
    common = ["--etcd", etcd_endpoint, "--prefix", f"/wheel-{uuid.uuid4().hex[:12]}/",
              "--state-dir", str(state)]
    master_log, worker_log = tmp_path / "master.log", tmp_path / "worker.log"
    master = start(python, "master", [*common, "--port", str(port)], elsewhere, master_log)
    worker = start(python, "worker", [*common, "--id", "wheel-1"], elsewhere, worker_log)
    try:
        wait_up(url, master, master_log)
        with httpx.Client(base_url=url, timeout=10) as client:
            page = client.get("/")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            assert page.content == (WEBAPP / "index.html").read_bytes()
            script = client.get("/app.js")
            assert script.status_code == 200
            assert "javascript" in script.headers["content-type"]
            assert script.content == (WEBAPP / "app.js").read_bytes()

            put = client.put("/api/v1/jobs/hello",
                             json={"command": "echo hello", "cronExpr": "* * * * * *"})
            assert put.status_code == 201, put.text
            deadline = time.monotonic() + 30
            runs: list[dict] = []
            while not runs and time.monotonic() < deadline:
                assert worker.poll() is None, worker_log.read_text()[-3000:]
                answer = client.get("/api/v1/runs", params={"job": "hello"})
                assert answer.status_code == 200, answer.text
                runs = answer.json()["runs"]
                time.sleep(0.3)
            assert runs, f"no run of 'hello' in 30 s:\n{worker_log.read_text()[-3000:]}"
            assert (runs[-1]["status"], runs[-1]["output"], runs[-1]["worker"]) == \
                ("succeeded", "hello\n", "wheel-1")
            client.delete("/api/v1/jobs/hello")
        assert stop(worker, "the worker", worker_log, 90) == 0
        assert stop(master, "the master", master_log, 60) == 0
    finally:
        for process in (worker, master):
            if process.poll() is None:
                process.kill()
                process.wait()
    logs = master_log.read_text() + worker_log.read_text()
    assert "Traceback" not in logs, logs[-3000:]
    assert list(elsewhere.iterdir()) == []  # nothing written where they were started
    assert (state / "runs.db").is_file()
