"""`Config.db`: the MySQL URL with the password and TLS settings applied over it.

Rules (DESIGN §9): `db_password` replaces the URL's password and `db_ca_file` its
`ssl-ca`; the identity check is off if either the URL or `db_verify_identity` says
so; paths are made absolute; TLS settings for a store that is not MySQL are refused.
"""

from __future__ import annotations

import os

import pytest

from cluster.config import InconsistentValues, MysqlUrl, load_config

URL = "mysql://sched@db.internal:3306/scheduler"


def db(env: dict[str, str] | None = None, **flags: str) -> MysqlUrl:
    url = load_config(env=env or {}, flags={"db_url": URL, **flags}).db
    assert isinstance(url, MysqlUrl)
    return url


def test_no_ca_means_plain_tcp() -> None:
    assert not db().tls


def test_the_ca_flag_turns_tls_on_with_the_identity_checked() -> None:
    url = db(db_ca_file="/etc/ssl/db-ca.pem")
    assert url.tls and url.ca_file == "/etc/ssl/db-ca.pem" and url.verify_identity


def test_the_ca_setting_wins_over_the_urls() -> None:
    url = db(db_url=URL + "?ssl-ca=/url/ca.pem", db_ca_file="/flag/ca.pem")
    assert url.ca_file == "/flag/ca.pem"
    assert db(db_url=URL + "?ssl-ca=/url/ca.pem").ca_file == "/url/ca.pem"


def test_the_ca_comes_from_the_environment_too() -> None:
    assert db(env={"SCHEDULER_DB_CA_FILE": "/env/ca.pem"}).ca_file == "/env/ca.pem"


@pytest.mark.parametrize("query, flag, verified", [
    ("", None, True),
    ("&ssl-verify-identity=false", None, False),
    ("", "false", False),
    ("&ssl-verify-identity=true", "false", False),
    ("&ssl-verify-identity=false", "true", False),  # either one turns it off
])
def test_the_identity_check_is_off_when_either_says_so(query, flag, verified) -> None:
    flags = {"db_url": URL + "?ssl-ca=/ca.pem" + query}
    if flag is not None:
        flags["db_verify_identity"] = flag
    assert db(**flags).verify_identity is verified


def test_relative_tls_paths_are_made_absolute(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = db(db_url=URL + "?ssl-ca=certs/ca.pem&ssl-cert=me.pem&ssl-key=me.key")
    assert (url.ca_file, url.cert_file, url.key_file) == (
        str(tmp_path / "certs/ca.pem"), str(tmp_path / "me.pem"), str(tmp_path / "me.key"))
    assert db(db_ca_file="ca.pem").ca_file == str(tmp_path / "ca.pem")


@pytest.mark.parametrize("db_url", [None, "sqlite:////var/lib/s/runs.db"])
def test_a_ca_for_a_store_that_is_not_mysql_is_refused(db_url) -> None:
    flags = {"db_ca_file": "/ca.pem"} | ({"db_url": db_url} if db_url else {})
    with pytest.raises(InconsistentValues, match="db_ca_file is set but the run store "
                                                 "is not MySQL"):
        load_config(env={}, flags=flags)


def test_a_client_certificate_needs_a_ca_from_somewhere() -> None:
    with_cert = URL + "?ssl-cert=/me.pem&ssl-key=/me.key"
    with pytest.raises(InconsistentValues, match="ssl-cert needs a CA"):
        load_config(env={}, flags={"db_url": with_cert})
    assert db(db_url=with_cert, db_ca_file="/ca.pem").cert_file == "/me.pem"


@pytest.mark.parametrize("source", ["env", "file"])
def test_the_password_reaches_the_url_object_and_nothing_printable(source, tmp_path) -> None:
    secret = "Pa55-w0rd-from-" + source
    if source == "env":
        config = load_config(env={"SCHEDULER_DB_PASSWORD": secret},
                             flags={"db_url": URL, "db_ca_file": "/ca.pem"})
    else:
        path = tmp_path / "db-password"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, secret.encode() + b"\n")
        os.close(fd)
        config = load_config(env={}, flags={"db_url": URL, "db_ca_file": "/ca.pem",
                                            "db_password_file": str(path)})
    assert config.db.password == secret  # type: ignore[union-attr]
    shown = [repr(config), str(config.redacted()), config.db.redacted(), repr(config.db)]
    assert not any(secret in text for text in shown)
    assert "ssl-ca=/ca.pem" in config.db.redacted()
