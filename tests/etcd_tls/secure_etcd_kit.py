"""The secured etcd the tests of this directory share: its certificates, user and
password, and the settings a process needs to reach it (see conftest.py)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: tls_certs
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))  # e2e_harness

import services  # noqa: E402  (tests/conftest.py put scripts/ on the path)
from tls_certs import CertFiles  # noqa: E402

from cluster.etcd import EtcdAccess  # noqa: E402

USER = "scheduler"
PREFIX_ROOT = "/secure/"  # the user's role covers this prefix, nothing else
TOKEN_TTL_S = 2


@dataclass(frozen=True)
class SecureEtcd:
    server: services.EtcdServer
    ca: Path
    other_ca: Path
    client: CertFiles  # no CN: good for gRPC and for the gateway
    expired: CertFiles
    foreign: CertFiles  # signed by other_ca
    named: CertFiles  # CN=worker: the gateway refuses it
    password: str
    password_file: Path  # 0600

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def access(self, **changes: object) -> EtcdAccess:
        fields: dict[str, object] = dict(
            ca_file=str(self.ca), cert_file=str(self.client.cert),
            key_file=str(self.client.key), user=USER, password=self.password)
        fields.update(changes)
        return EtcdAccess(**fields)  # type: ignore[arg-type]

    def flags(self, cert: CertFiles | None = None, ca: Path | None = None) -> list[str]:
        """Command-line settings (the password by file: never a flag)."""
        cert = cert or self.client
        return ["--etcd", self.endpoint, "--etcd-ca", str(ca or self.ca),
                "--etcd-cert", str(cert.cert), "--etcd-key", str(cert.key),
                "--etcd-user", USER, "--etcd-password-file", str(self.password_file)]
