"""What the throw-away servers share: loopback ports, waiting, stopping, finding binaries.

Part of ``scripts/services.py`` (see its docstring); standard library only, like it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"


class ServiceError(RuntimeError):
    """A server did not start or stop as asked; the message says which and why."""


# Invariant: free_port never returns a port twice in one process. The kernel may give a
# closed port out again at once, and a cluster asks for six before any server binds one.
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nobody listens on now (the kernel picks it), and not one this
    process was already given."""
    while True:
        with socket.socket() as sock:
            sock.bind((LOOPBACK, 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` itself holds a listening TCP socket on ``port``.

    Why: ``free_port`` cannot reserve the port, so another server started at the same
    moment (a concurrent test run) may take it; a health check on the port would then
    reach that server and call ours healthy while ours is failing to bind (seen: a
    "frozen" private etcd that still answered)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    sockets = set()
    for fd in fds:
        try:
            sockets.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:  # closed meanwhile (the listing's own fd, for one)
            pass
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port \
                    and f"socket:[{inode}]" in sockets:
                return True
    return False


def clean_env() -> dict[str, str]:
    # etcd reads every ETCD_* variable as a flag: never let the caller's leak in.
    return {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}


def wait_until(predicate, timeout_s: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise ServiceError(f"{what} not ready after {timeout_s:.0f} s\n{tail}")


def stop_pid(pid: int, grace_s: float = 10.0) -> None:
    """SIGTERM, wait up to ``grace_s``, then SIGKILL. A pid that is gone is fine."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        reap(pid)
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    reap(pid)


def spawn(command: list[str], log_path: Path, env: dict[str, str] | None = None
          ) -> subprocess.Popen:
    """Start a server in a session of its own, its output appended to ``log_path``."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=log, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def raise_if_exited(process: subprocess.Popen | None, name: str, log_path: Path) -> None:
    """A server that died while we wait for it: say so at once, with its log's tail."""
    if process is not None and process.poll() is not None:
        raise ServiceError(f"{name} exited with {process.returncode}\n"
                           + log_path.read_text(errors="replace")[-2000:])


def kill(process: subprocess.Popen | None) -> None:
    """SIGKILL: a crash, for fault tests. The data dir survives for a restart."""
    if process is not None:
        process.kill()
        process.wait()


def stop(process: subprocess.Popen | None, grace_s: float) -> None:
    if process is not None:
        stop_pid(process.pid, grace_s)
        process.wait()


def reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def need(*names: str) -> str:
    for name in names:
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin")
        if path:
            return path
    raise ServiceError(
        f"{names[0]} not found: install Debian's "
        + ("etcd-server" if names[0] == "etcd" else "mariadb-server")
    )
