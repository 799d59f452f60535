"""Fixtures that give each test real servers and a namespace of its own.

Servers come from the environment when a runner started them already
(``SCHEDULER_TEST_ETCD=host:port``, ``SCHEDULER_TEST_MYSQL=mysql://...``, as printed
by ``scripts/services.py start``); otherwise the session starts throw-away ones
through that script and stops them at the end. Isolation between tests: a fresh
etcd key prefix and a fresh MySQL database per test, so tests never see each other.
Fault tests that kill a server use the ``*_factory`` fixtures, which start private
instances that nobody else shares.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import services  # noqa: E402  (scripts/ is not a package)

from cluster.etcd import open_etcd  # noqa: E402

# Tests stop the CLI, make run and others with SIGINT, as Ctrl-C does. A session started
# in the background by a shell without job control (a CI script's `cmd &`) inherits
# SIGINT ignored, and so would every process it starts: they would never stop. A
# handler here is reset to the default in each child at exec, which Python children
# turn into KeyboardInterrupt as usual.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def etcd_endpoint(tmp_path_factory) -> str:
    """``host:port`` of the shared etcd."""
    if endpoint := os.environ.get("SCHEDULER_TEST_ETCD"):
        yield endpoint
        return
    server = services.EtcdServer(tmp_path_factory.mktemp("etcd")).start()
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture
def etcd_prefix() -> str:
    """A key prefix no other test uses, shaped like the production ``/cron/``."""
    return f"/t-{uuid.uuid4().hex[:12]}/"


@pytest.fixture
async def etcd(etcd_endpoint, etcd_prefix):
    """A client of the shared etcd; the test's prefix is deleted afterwards."""
    async with open_etcd([etcd_endpoint], timeout_s=5.0) as client:
        yield client
        await client.delete_prefix(etcd_prefix)


@pytest.fixture(scope="session")
def mysql_server_url(tmp_path_factory) -> str:
    """``mysql://user:pass@host:port/scheduler`` of the shared MariaDB."""
    if url := os.environ.get("SCHEDULER_TEST_MYSQL"):
        yield url
        return
    server = services.MariaDBServer(tmp_path_factory.mktemp("mariadb")).start()
    try:
        yield server.url()
    finally:
        server.stop()


@pytest.fixture
def mysql_url(mysql_server_url) -> str:
    """A database of this test's own, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    services.mysql_cli(mysql_server_url, f"CREATE DATABASE {name}")
    u = urllib.parse.urlsplit(mysql_server_url)
    try:
        yield urllib.parse.urlunsplit(u._replace(path=f"/{name}"))
    finally:
        services.mysql_cli(mysql_server_url, f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture
def etcd_factory(tmp_path):
    """Start private etcd servers (``factory()``) that this test may kill and restart."""
    servers: list[services.EtcdServer] = []

    def factory(**kwargs) -> services.EtcdServer:
        server = services.EtcdServer(tmp_path / f"etcd{len(servers)}", **kwargs).start()
        servers.append(server)
        return server

    yield factory
    for server in reversed(servers):
        server.stop()


@pytest.fixture
def etcd_cluster_factory(tmp_path):
    """Start private 3-member etcd clusters (``factory()``) on loopback: ``leader()``,
    ``kill(member)`` (SIGKILL) and ``restart(member)``; every member stopped after."""
    clusters: list[services.EtcdCluster] = []

    def factory(**kwargs) -> services.EtcdCluster:
        cluster = services.EtcdCluster(tmp_path / f"etcd-cluster{len(clusters)}", **kwargs)
        clusters.append(cluster)  # before start: a half-started cluster is stopped too
        return cluster.start()

    yield factory
    for cluster in reversed(clusters):
        cluster.stop()


@pytest.fixture
def mariadb_factory(tmp_path):
    """Start private MariaDB servers that this test may stop and start again
    (``factory(tls=services.MariaDBTls(...))`` for one that serves TLS)."""
    servers: list[services.MariaDBServer] = []

    def factory(**kwargs) -> services.MariaDBServer:
        server = services.MariaDBServer(tmp_path / f"mariadb{len(servers)}", **kwargs).start()
        servers.append(server)
        return server

    yield factory
    for server in reversed(servers):
        server.stop()


@dataclass(frozen=True)
class TlsMariaDB:
    """A private MariaDB that refuses plain TCP (``require_secure_transport=ON``),
    serving a certificate for 127.0.0.1 and localhost signed by ``ca``; ``other_ca``
    signed nothing it serves. ``url(db)`` has the password and no TLS settings."""

    server: services.MariaDBServer
    ca: Path
    other_ca: Path
    certs_dir: Path

    @property
    def password(self) -> str:
        return services.MYSQL_PASSWORD

    def url(self, database: str = "scheduler"):
        from cluster.config import parse_db_url

        return parse_db_url(self.server.url(database))

    def tls_url(self, database: str = "scheduler", **tls):
        """``url(database)`` with TLS on, verified against ``ca`` unless told otherwise."""
        return dataclasses.replace(self.url(database), **{"ca_file": str(self.ca), **tls})


@pytest.fixture(scope="module")
def mysql_tls(tmp_path_factory) -> TlsMariaDB:
    """One TLS-only MariaDB per test module, with certificates made for it."""
    from tls_certs import Authority  # needs `cryptography`, from the test extra

    base = tmp_path_factory.mktemp("mariadb-tls")
    certs_dir = base / "certs"
    certs_dir.mkdir(mode=0o700)
    ca = Authority.create(certs_dir, "test-ca")
    other = Authority.create(certs_dir, "other-ca")
    leaf = ca.issue(certs_dir, "mariadb", server=True)
    tls = services.MariaDBTls(ca=ca.cert, cert=leaf.cert, key=leaf.key)
    server = services.MariaDBServer(base / "server", tls=tls).start()
    try:
        # Debian's MariaDB links OpenSSL; a build without TLS would fail every test here
        # for a reason worth saying.
        have_ssl = server.sql("SELECT @@have_ssl, @@require_secure_transport").split()
        assert have_ssl == ["YES", "1"], f"MariaDB without TLS: {have_ssl}"
        yield TlsMariaDB(server, ca.cert, other.cert, certs_dir)
    finally:
        server.stop()


@pytest.fixture
def mysql_tls_db(mysql_tls) -> str:
    """A database of this test's own on the module's TLS MariaDB, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    mysql_tls.server.sql(f"CREATE DATABASE {name}")  # the socket needs no TLS
    try:
        yield name
    finally:
        mysql_tls.server.sql(f"DROP DATABASE IF EXISTS {name}")
