"""A secured etcd per test module: TLS with client certificates required, auth on,
and a user ``scheduler`` whose role may read and write under ``/secure/`` only.

Certificates are made here (``tls_certs``): a CA and a server certificate from it,
a client certificate with no Common Name (etcd's JSON gateway refuses one that has
a CN once auth is on), the same kind expired, one from an unrelated CA, one with a
CN, and ``root``'s (its CN makes ``etcdctl`` act as root once auth is on, so no root
password is ever typed). Idle auth tokens live ``TOKEN_TTL_S`` only, so every test
here also goes through re-authentication.
"""

from __future__ import annotations

import os
import secrets
import uuid

import pytest
from secure_etcd_kit import PREFIX_ROOT, TOKEN_TTL_S, USER, SecureEtcd
from tls_certs import Authority

import services


@pytest.fixture(scope="module")
def secure_etcd(tmp_path_factory) -> SecureEtcd:
    base = tmp_path_factory.mktemp("secure-etcd")
    certs = base / "certs"
    certs.mkdir(mode=0o700)
    ca = Authority.create(certs, "ca")
    other = Authority.create(certs, "other-ca")
    server_cert = ca.issue(certs, "server", common_name="etcd-server", server=True)
    root = ca.issue(certs, "root", common_name="root")
    tls = services.EtcdTls(server_cert.cert, server_cert.key, ca.cert, root.cert, root.key)
    server = services.EtcdServer(base / "etcd", tls=tls, auth_token_ttl_s=TOKEN_TTL_S).start()
    try:
        password = secrets.token_hex(12)
        server.enable_auth(secrets.token_hex(12), {USER: (password, PREFIX_ROOT)})
        password_file = certs / "etcd-password"
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(password + "\n")
        yield SecureEtcd(
            server, ca.cert, other.cert, ca.issue(certs, "client"),
            ca.issue(certs, "expired", expired=True), other.issue(certs, "foreign"),
            ca.issue(certs, "named", common_name="worker"), password, password_file)
    finally:
        server.stop()


@pytest.fixture
def secure_prefix() -> str:
    """A prefix of this test's own, inside the one the user's role covers."""
    return f"{PREFIX_ROOT}t-{uuid.uuid4().hex[:12]}/"
