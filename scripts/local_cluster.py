#!/usr/bin/env python3
"""The whole system on one machine: etcd, the master and two workers (``make run``).

Everything lives under one state directory (default ``.state/``): etcd's data, the
SQLite run store, the workers' spill files, the API token and the logs. Running it
again reuses all of it, so jobs and run history survive a restart. Ctrl-C (or
SIGTERM) stops the workers first (they let running jobs finish and flush their
records), then the master, then etcd, and waits for each: nothing is left behind.

Standard library only; the processes run from the project's venv.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import services  # noqa: E402  (scripts/ is not a package)

ROOT = Path(__file__).resolve().parent.parent
# Fixed ports so that a second run finds the same cluster; the environment may move
# them (tests run a copy beside a developer's own).
ETCD_PORT = int(os.environ.get("LOCAL_CLUSTER_ETCD_PORT", "23790"))
ETCD_PEER_PORT = ETCD_PORT + 10
MASTER_PORT = int(os.environ.get("LOCAL_CLUSTER_PORT", "8070"))
WORKERS = ("local-1", "local-2")  # stable ids: a worker's spill file is replayed on restart


def token_for(state: Path) -> str:
    """One token per state directory, made once and kept (mode 0600)."""
    path = state / "api-token"
    if not path.exists():
        path.write_text(secrets.token_hex(24))
        path.chmod(0o600)
    return path.read_text().strip()


def master_flags(common: list[str], port: int, token: str) -> list[str]:
    """The master's flags. ``--token=VALUE`` in one word: a token may begin with ``-``,
    which argparse would take for a flag of its own."""
    return [*common, "--port", str(port), f"--token={token}", "--webapp", str(ROOT / "webapp")]


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                start_new_session=True)


def wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the master exited ({process.returncode}); see {log}:\n"
                             + log.read_text(errors="replace")[-2000:])
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the master did not answer /healthz within {timeout_s:.0f} s; see {log}")


def stop(group: list[tuple[str, subprocess.Popen]], timeout_s: float) -> None:
    """SIGTERM a group of processes at once, then wait for each (SIGKILL past the limit)."""
    for _, process in group:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for name, process in group:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"  {name} did not stop in {timeout_s:.0f} s: killing it", flush=True)
            process.kill()
            process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state", default=str(ROOT / ".state"), help="state directory")
    parser.add_argument("--port", type=int, default=MASTER_PORT, help="master port")
    parser.add_argument("--python", default=sys.executable, help="the venv's python")
    args = parser.parse_args()
    state = Path(args.state).resolve()
    (state / "logs").mkdir(parents=True, exist_ok=True)
    token = token_for(state)
    url = f"http://127.0.0.1:{args.port}"
    db = f"sqlite:///{state / 'runs.db'}"
    etcd = services.EtcdServer(state, client_port=ETCD_PORT, peer_port=ETCD_PEER_PORT)
    children: list[tuple[str, subprocess.Popen]] = []
    # Signals become a clean shutdown below, whichever process gets them first.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        print(f"starting etcd on 127.0.0.1:{ETCD_PORT} (data in {etcd.data_dir})", flush=True)
        etcd.start()
        common = ["--etcd", etcd.endpoint, "--db", db]
        master_log = state / "logs" / "master.log"
        master = start([args.python, "-m", "master", *master_flags(common, args.port, token)],
                       master_log)
        children.append(("master", master))
        for worker_id in WORKERS:
            worker = start([args.python, "-m", "worker", *common, "--id", worker_id,
                            "--spill-dir", str(state / "spill")],
                           state / "logs" / f"{worker_id}.log")
            children.append((worker_id, worker))
        wait_healthy(url, master, master_log)
        print(f"\nScheduler is up: {url}\n"
              f"API token: {token}\n"
              f"  export SCHEDULER_URL={url} SCHEDULER_API_TOKEN={token}\n"
              f"  schedctl jobs put hello --command 'echo hello' --cron '*/5 * * * * *'\n"
              f"Logs: {state / 'logs'}    Ctrl-C stops everything.\n", flush=True)
        while all(p.poll() is None for _, p in children):
            time.sleep(0.5)
        dead = [(name, p.returncode) for name, p in children if p.poll() is not None]
        print(f"stopping: {dead} exited on its own; see {state / 'logs'}", flush=True)
        return 1
    except KeyboardInterrupt:
        print("\nstopping (workers let running jobs finish first)...", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut cleanup short
        stop([c for c in children if c[0] != "master"], timeout_s=60)  # workers first
        stop([c for c in children if c[0] == "master"], timeout_s=30)
        etcd.stop()
        print("stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
