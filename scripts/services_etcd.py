"""A private etcd on loopback, optionally with TLS and auth: a single member, or one
member of a cluster (``services_etcd_cluster.py`` starts three).

Part of ``scripts/services.py`` (see its docstring); standard library only, like it.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from services_process import LOOPBACK, ServiceError, clean_env, free_port, kill, listens_on, \
    need, raise_if_exited, spawn, stop, wait_until


@dataclass(frozen=True)
class EtcdTls:
    """TLS on etcd's client port: its certificate and key, the CA client certificates
    must chain to (``--client-cert-auth``), and a client certificate this script uses
    itself (health checks, ``etcdctl``; name it ``root`` to administer etcd once auth
    is on). Peers stay plain: one member, on loopback."""

    cert_file: Path
    key_file: Path
    trusted_ca_file: Path
    client_cert_file: Path
    client_key_file: Path


@dataclass
class EtcdServer:
    """One single-member etcd on loopback, its data kept in ``data_dir``.

    Auto-compaction is on, as in production: every fire writes, and watchers must
    cope with compaction. ``auth_token_ttl_s``: how long an idle auth token lives
    (etcd's default is 300 s; tests of re-authentication make it short).
    """

    base_dir: Path
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    compaction_retention: str = "1000"
    tls: EtcdTls | None = None
    auth_token_ttl_s: int | None = None
    process: subprocess.Popen | None = None
    # A member of a cluster: its name and ``name=peer-url,...`` of every member.
    name: str = "scheduler-test"
    initial_cluster: str | None = None
    cluster_token: str = "scheduler-test"

    @property
    def endpoint(self) -> str:
        return f"{LOOPBACK}:{self.client_port}"

    @property
    def client_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.endpoint}"

    @property
    def peer_url(self) -> str:
        return f"http://{LOOPBACK}:{self.peer_port}"

    @property
    def data_dir(self) -> Path:
        return Path(self.base_dir) / "etcd"

    @property
    def log_path(self) -> Path:
        return Path(self.base_dir) / "etcd.log"

    def command(self) -> list[str]:
        client = self.client_url
        peer = self.peer_url
        return [
            need("etcd"),
            "--name", self.name,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", client,
            "--advertise-client-urls", client,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", self.initial_cluster or f"{self.name}={peer}",
            "--initial-cluster-token", self.cluster_token,
            "--auto-compaction-mode", "revision",
            "--auto-compaction-retention", self.compaction_retention,
            "--log-outputs", "stderr",
            *self._tls_flags(),
            *(["--auth-token-ttl", str(self.auth_token_ttl_s)]
              if self.auth_token_ttl_s is not None else []),
        ]

    def _tls_flags(self) -> list[str]:
        if self.tls is None:
            return []
        return ["--cert-file", str(self.tls.cert_file), "--key-file", str(self.tls.key_file),
                "--trusted-ca-file", str(self.tls.trusted_ca_file), "--client-cert-auth"]

    def start(self, timeout_s: float = 30.0) -> "EtcdServer":
        self.spawn()
        wait_until(self.healthy, timeout_s, f"etcd on {self.endpoint}", self.log_path)
        return self

    def spawn(self) -> None:
        """Start the process without waiting: a cluster's members are healthy only once
        a quorum of them runs, so the cluster spawns them all, then waits."""
        Path(self.base_dir).mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        self.data_dir.chmod(0o700)  # etcd refuses a group- or world-readable dir
        self.process = spawn(self.command(), self.log_path, env=clean_env())

    def healthy(self) -> bool:
        raise_if_exited(self.process, "etcd", self.log_path)
        if self.process is not None and not listens_on(self.process.pid, self.client_port):
            return False  # not ours yet: whatever answers on the port is someone else
        try:
            with urllib.request.urlopen(f"{self.client_url}/health", timeout=1,
                                        context=self._ssl_context()) as r:
                return json.loads(r.read()).get("health") == "true"
        except (OSError, ValueError):
            return False

    def status(self) -> dict | None:
        """This member's ``/v3/maintenance/status`` (etcd's JSON gateway): its
        ``header.member_id`` and the ``leader`` it knows; None if it does not answer."""
        request = urllib.request.Request(f"{self.client_url}/v3/maintenance/status",
                                         data=b"{}", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=1, context=self._ssl_context()) as r:
                return json.loads(r.read())
        except (OSError, ValueError):
            return None

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.tls is None:
            return None
        context = ssl.create_default_context(cafile=str(self.tls.trusted_ca_file))
        context.load_cert_chain(str(self.tls.client_cert_file), str(self.tls.client_key_file))
        return context

    def etcdctl(self, *args: str, stdin: str = "") -> str:
        """Run ``etcdctl`` against this server, with TLS when it has it. Once auth is
        on, it acts as the user its client certificate names (its CN): give it one for
        ``root``. Passwords go through ``stdin``, never on the command line."""
        cmd = [need("etcdctl"), f"--endpoints={self.client_url}"]
        if self.tls is not None:
            cmd += [f"--cacert={self.tls.trusted_ca_file}",
                    f"--cert={self.tls.client_cert_file}", f"--key={self.tls.client_key_file}"]
        done = subprocess.run([*cmd, *args], input=stdin, capture_output=True, text=True,
                              env={**clean_env(), "ETCDCTL_API": "3"}, timeout=30)
        if done.returncode != 0:
            raise ServiceError(f"etcdctl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def enable_auth(self, root_password: str, users: dict[str, tuple[str, str]]) -> None:
        """Create ``root``, one role per user granted readwrite on its prefix only
        (``users``: name -> (password, prefix)), then turn authentication on."""
        self.etcdctl("user", "add", "root", "--interactive=false", stdin=root_password + "\n")
        for name, (password, prefix) in users.items():
            self.etcdctl("role", "add", name)
            self.etcdctl("role", "grant-permission", name, "--prefix=true", "readwrite",
                         prefix)
            self.etcdctl("user", "add", name, "--interactive=false", stdin=password + "\n")
            self.etcdctl("user", "grant-role", name, name)
        self.etcdctl("auth", "enable")

    def kill(self) -> None:
        """SIGKILL: a crash, for fault tests. The data dir survives for a restart."""
        kill(self.process)

    def stop(self) -> None:
        stop(self.process, grace_s=10.0)
