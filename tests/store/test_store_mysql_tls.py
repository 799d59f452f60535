"""The MySQL store over TLS, against a private MariaDB that refuses plain TCP.

Certificates are made in the test (``tls_certs``): a CA, a server certificate it
signs for 127.0.0.1 and localhost, an unrelated CA, and a certificate naming another
host. What must hold: records go through TLS both ways; the server really refuses a
plain client; a certificate that does not verify is refused with a named error; no
message ever holds the password.
"""

from __future__ import annotations

import dataclasses

import pytest

from tls_certs import Authority
import services
from cluster.config import load_config
from cluster.store import (
    RunRecord,
    StoreAccessDenied,
    StoreCertificateError,
    StoreConfigError,
    StoreSettings,
    StoreTlsError,
    open_store,
)

T0 = 1_700_000_000_000
SETTINGS = StoreSettings(connect_timeout_s=5.0, query_timeout_s=5.0)


def run(i: int) -> RunRecord:
    return RunRecord(
        run_id=f"tls-{i}", job_name="job", worker="w1", command="true", output=f"out {i}",
        err="", exit_code=0, status="succeeded", trigger="schedule", attempt=1,
        plan_time=T0 + i, schedule_time=T0 + i, start_time=T0 + i, end_time=T0 + i + 1,
    )


def assert_no_password(text: str, *passwords: str) -> None:
    for password in (services.MYSQL_PASSWORD, *passwords):
        assert password not in text


async def test_records_are_written_and_read_over_tls(mysql_tls, mysql_tls_db):
    target = mysql_tls.tls_url(mysql_tls_db)
    async with open_store(target, SETTINGS) as store:
        await store.write_batch([run(1), run(2)])
        assert await store.get("tls-1") == run(1)
        assert [r.run_id for r in (await store.query(job_name="job")).records] == \
            ["tls-2", "tls-1"]
    # Read back by another store, as the master reads what workers wrote.
    async with open_store(target, SETTINGS) as store:
        assert await store.count() == 2


async def test_the_url_query_alone_turns_tls_on(mysql_tls, mysql_tls_db):
    url = mysql_tls.server.url(mysql_tls_db) + f"?ssl-ca={mysql_tls.ca}"
    async with open_store(url, SETTINGS) as store:
        await store.write_batch([run(3)])
        assert await store.count() == 1


async def test_the_server_refuses_plain_tcp(mysql_tls, mysql_tls_db):
    """The other tests prove something only if the server demands TLS."""
    async with open_store(mysql_tls.url(mysql_tls_db), SETTINGS) as store:
        with pytest.raises(StoreAccessDenied, match="the server requires TLS") as info:
            await store.write_batch([run(1)])
    assert_no_password(str(info.value))


async def test_a_server_certificate_from_another_ca_is_refused(mysql_tls, mysql_tls_db):
    target = mysql_tls.tls_url(mysql_tls_db, ca_file=str(mysql_tls.other_ca))
    async with open_store(target, SETTINGS) as store:
        with pytest.raises(StoreCertificateError, match="TLS certificate was refused: "
                           "self-signed certificate in certificate chain") as info:
            await store.write_batch([run(1)])
        with pytest.raises(StoreCertificateError):  # every call, not only the first
            await store.count()
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"run store {target.redacted()}:")
    assert "is --db-ca (or ssl-ca) the CA that signed the server's certificate?" in message
    assert_no_password(message)
    assert isinstance(info.value, StoreConfigError)  # not worth retrying at once


async def test_a_wrong_password_is_named_and_not_shown(mysql_tls, mysql_tls_db):
    target = dataclasses.replace(mysql_tls.tls_url(mysql_tls_db), password="Wr0ng-pw-xyz")
    async with open_store(target, SETTINGS) as store:
        with pytest.raises(StoreAccessDenied, match="Access denied for user 'scheduler'") \
                as info:
            await store.ping()
    assert "requires TLS" not in str(info.value)  # TLS was on: the hint would mislead
    assert_no_password(str(info.value) + repr(info.value), "Wr0ng-pw-xyz")


async def test_a_server_without_tls_is_refused_when_tls_is_asked(mysql_url, mysql_tls):
    """The shared MariaDB serves no TLS: asking for it must fail, never fall back."""
    url = f"{mysql_url}?ssl-ca={mysql_tls.ca}"
    async with open_store(url, SETTINGS) as store:
        with pytest.raises(StoreTlsError, match="the handshake failed") as info:
            await store.write_batch([run(1)])
    assert not isinstance(info.value, StoreCertificateError)
    assert_no_password(str(info.value))


@pytest.mark.parametrize("content, reason", [
    (None, "cannot read the CA file .*: No such file or directory"),
    (b"not a certificate\n", "cannot use the CA file"),
])
async def test_an_unusable_ca_file_fails_at_open(mysql_tls, tmp_path, content, reason):
    ca = tmp_path / "ca.pem"
    if content is not None:
        ca.write_bytes(content)
    with pytest.raises(StoreTlsError, match=reason) as info:
        async with open_store(mysql_tls.tls_url(ca_file=str(ca)), SETTINGS):
            pass
    assert_no_password(str(info.value))


async def test_identity_is_checked_and_can_be_turned_off(mariadb_factory, tmp_path):
    """A certificate from our CA that names another host: refused while the identity
    is checked (the default), accepted with db_verify_identity=false."""
    ca = Authority.create(tmp_path, "ca")
    leaf = ca.issue(tmp_path, "elsewhere", server=True, names=("db.example.org",))
    server = mariadb_factory(tls=services.MariaDBTls(ca.cert, leaf.cert,
                                                     leaf.key))
    checked = load_config(env={}, flags={
        "db_url": server.url(), "db_ca_file": str(ca.cert)}).db
    async with open_store(checked, SETTINGS) as store:
        with pytest.raises(StoreCertificateError,
                           match="IP address mismatch, certificate is not valid for "
                                 "'127.0.0.1' \\(it does not name the host dialled"):
            await store.write_batch([run(1)])
    unchecked = load_config(env={}, flags={
        "db_url": server.url(), "db_ca_file": str(ca.cert),
        "db_verify_identity": "false"}).db
    async with open_store(unchecked, SETTINGS) as store:
        await store.write_batch([run(1)])
        assert await store.count() == 1
    # Still verified against the CA: only the name is not checked.
    other = Authority.create(tmp_path, "other")
    async with open_store(dataclasses.replace(unchecked, ca_file=str(other.cert)),
                          SETTINGS) as store:
        with pytest.raises(StoreCertificateError):
            await store.count()


async def test_a_client_certificate_is_presented(mariadb_factory, tmp_path):
    """ssl-cert / ssl-key: a server that demands a client certificate (REQUIRE X509)
    lets us in with one signed by its CA."""
    ca = Authority.create(tmp_path, "ca")
    leaf = ca.issue(tmp_path, "server", server=True, names=("127.0.0.1",))
    me = ca.issue(tmp_path, "client", common_name="client")
    server = mariadb_factory(tls=services.MariaDBTls(ca.cert, leaf.cert,
                                                     leaf.key))
    server.sql(f"ALTER USER '{services.MYSQL_USER}'@'127.0.0.1' REQUIRE X509")
    no_cert = load_config(env={}, flags={
        "db_url": server.url(), "db_ca_file": str(ca.cert)}).db
    async with open_store(no_cert, SETTINGS) as store:
        with pytest.raises(StoreAccessDenied):
            await store.ping()
    with_cert = server.url() + f"?ssl-ca={ca.cert}&ssl-cert={me.cert}" \
                               f"&ssl-key={me.key}"
    async with open_store(with_cert, SETTINGS) as store:
        await store.write_batch([run(1)])
        assert await store.count() == 1


@pytest.mark.parametrize("problem", ["another key", "a passphrase"])
async def test_an_unusable_client_key_fails_at_open_without_a_prompt(mysql_tls, tmp_path,
                                                                      problem):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ca = Authority.create(tmp_path, "ca")
    me = ca.issue(tmp_path, "client", common_name="client")
    if problem == "another key":
        wrong = ec.generate_private_key(ec.SECP256R1())
        encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    else:
        wrong = serialization.load_pem_private_key(me.key.read_bytes(), None)
        encryption = serialization.BestAvailableEncryption(b"passphrase")
    key = tmp_path / "bad.key"
    key.write_bytes(wrong.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8, encryption))
    target = mysql_tls.tls_url(cert_file=str(me.cert), key_file=str(key))
    with pytest.raises(StoreTlsError, match="cannot use the client certificate .*: .*"
                                            r"\(not PEM, a key that does not match it, "
                                            "or a key with a passphrase\\)"):
        async with open_store(target, SETTINGS):
            pass
