#!/usr/bin/env python3
"""The whole system on one machine: etcd, the master and two workers (``make run``).

Everything lives under one state directory (default ``.state/``): etcd's data, the
SQLite run store, the workers' spill files, the API token and the logs. Running it
again reuses all of it, so jobs and run history survive a restart. Ctrl-C (or
SIGTERM) stops the workers first (they let running jobs finish and flush their
records), then the master, then etcd, and waits for each: nothing is left behind.

Private: the run store holds job output, the token opens the API. So this script sets
its umask to 077 before it creates anything (etcd inherits it): every directory
under the state directory is 0700 and every file 0600 from its creation, the token
file included (created by ``open`` with mode 0600, never chmod-ed after). The master
reads the token from that file (``--token-file``): a token on a command line is
readable by every local user in ``ps``. Master and workers get the user's own umask
back (they restrict their own files; jobs keep the user's umask).

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
TOKEN_FILE = "api-token"
# The master takes its token from the file only: these would contradict it.
_TOKEN_ENV = ("SCHEDULER_API_TOKEN", "SCHEDULER_API_TOKEN_FILE")


def token_for(state: Path) -> Path:
    """The state directory's token file, made once (mode 0600 from its creation) and
    kept. Written under a temporary name, then linked into place: the file is never
    seen empty, and of two runs racing, one token wins and both use it."""
    path = state / TOKEN_FILE
    if not path.exists():
        draft = state / f".{TOKEN_FILE}.{os.getpid()}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, (secrets.token_hex(24) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another run made it first: use theirs
        finally:
            os.unlink(draft)
    return path


def open_to_others(state: Path) -> list[Path]:
    """Entries of an existing state directory others may read or write (older versions
    of this script left them 0755/0644; master and workers refuse such directories)."""
    found = []
    for path in (state, *state.rglob("*")):
        st = path.lstat()
        if st.st_uid != os.geteuid() or (st.st_mode & 0o077 and not path.is_symlink()):
            found.append(path)
    return found


def master_flags(common: list[str], port: int, token_file: Path) -> list[str]:
    """The master's flags: the token by file, never itself on the command line."""
    return [*common, "--port", str(port), "--token-file", str(token_file)]


def open_log(path: Path) -> int:
    """An append fd of ``path``, created 0600, never through a symlink."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
                   | os.O_CLOEXEC, 0o600)


def start(cmd: list[str], log: Path, umask: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in _TOKEN_ENV}
    out = open_log(log)
    try:
        return subprocess.Popen(cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                cwd=ROOT, env={**env, "PYTHONUNBUFFERED": "1"},
                                start_new_session=True, umask=umask)
    finally:
        os.close(out)


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
    user_umask = os.umask(0o077)  # before anything is created: see the module doc
    state = Path(args.state).resolve()
    if state.exists() and (loose := open_to_others(state)):
        raise SystemExit(f"{len(loose)} files under {state} are open to other users or not "
                         f"yours (e.g. {loose[0]}): run 'chmod -R go-rwx {state}' as their "
                         f"owner, or remove {state}")
    (state / "logs").mkdir(mode=0o700, parents=True, exist_ok=True)
    token_file = token_for(state)
    url = f"http://127.0.0.1:{args.port}"
    etcd = services.EtcdServer(state, client_port=ETCD_PORT, peer_port=ETCD_PEER_PORT)
    children: list[tuple[str, subprocess.Popen]] = []
    # Signals become a clean shutdown below, whichever process gets them first. SIGINT
    # too, explicitly: started in the background by a shell without job control (a CI
    # script's `cmd &`), a process inherits SIGINT ignored, and Ctrl-C (or the make-run
    # test's SIGINT to the group) would leave the cluster running.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        print(f"starting etcd on 127.0.0.1:{ETCD_PORT} (data in {etcd.data_dir})", flush=True)
        etcd.start()
        # runs.db and spill/ are the defaults under --state-dir; both made 0700/0600.
        common = ["--etcd", etcd.endpoint, "--state-dir", str(state)]
        master_log = state / "logs" / "master.log"
        # -P: the working directory is not put first on sys.path, so a master/ or
        # worker/ planted there is never imported in place of ours.
        master = start([args.python, "-P", "-m", "master",
                        *master_flags(common, args.port, token_file)], master_log, user_umask)
        children.append(("master", master))
        for worker_id in WORKERS:
            worker = start([args.python, "-P", "-m", "worker", *common, "--id", worker_id],
                           state / "logs" / f"{worker_id}.log", user_umask)
            children.append((worker_id, worker))
        wait_healthy(url, master, master_log)
        print(f"\nScheduler is up: {url}\n"
              f"API token: in {token_file} (mode 0600)\n"
              f"  export SCHEDULER_URL={url} SCHEDULER_API_TOKEN=$(cat {token_file})\n"
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
