"""parse_db_url and parse_endpoint: the shapes the stores and the etcd adapter reuse."""

from __future__ import annotations

import pytest

from cluster.config import (
    BadDbUrl, BadEndpoint, MysqlUrl, SqliteUrl, parse_db_url, parse_endpoint,
)


@pytest.mark.parametrize("url, expected", [
    ("mysql://user:pass@127.0.0.1:3307/runs",
     MysqlUrl(host="127.0.0.1", port=3307, database="runs", user="user", password="pass")),
    ("mysql://u%40x:p%3A%2F%40@db.local/runs",
     MysqlUrl(host="db.local", port=3306, database="runs", user="u@x", password="p:/@")),
    ("mysql://reader@db:1/t_abc", MysqlUrl(host="db", port=1, database="t_abc", user="reader")),
    ("mysql://u@[::1]:3306/runs", MysqlUrl(host="::1", port=3306, database="runs", user="u")),
    ("MariaDB://u:p@h/runs",
     MysqlUrl(host="h", port=3306, database="runs", user="u", password="p")),
    ("sqlite:///scheduler-runs.db", SqliteUrl("scheduler-runs.db")),
    ("sqlite:///relative/path.db", SqliteUrl("relative/path.db")),
    ("sqlite:////absolute/path.db", SqliteUrl("/absolute/path.db")),
    ("sqlite:///:memory:", SqliteUrl(":memory:")),
    ("sqlite:///my%20runs.db", SqliteUrl("my runs.db")),
])
def test_good_urls_parse(url: str, expected: object) -> None:
    assert parse_db_url(url) == expected


@pytest.mark.parametrize("url, reason", [
    ("scheduler.db", "no scheme"),
    ("postgres://u:p@h:5432/d", "unsupported scheme 'postgres'"),
    ("mysql://h:3306/d", "no user name"),
    ("mysql://:p@h:3306/d", "no user name"),
    ("mysql://u:p@h:5432", "database name '' is missing"),
    ("mysql://u:p@h:5432/", "database name '' is missing"),
    ("mysql://u:p@h:5432/a/b", "database name 'a/b'"),
    ("mysql://u:p@h:99999/d", "port is not a number"),
    ("mysql://u:p@h:abc/d", "port is not a number"),
    ("mysql://u:p@/d", "no host"),
    ("mysql://u:p@h/d?ssl=1", "unknown query key 'ssl' (known: ssl-ca, ssl-cert, ssl-key, "
                              "ssl-verify-identity)"),
    ("mysql://u:p@h/d?ssl_ca=/ca.pem", "unknown query key 'ssl_ca'"),
    ("mysql://u:p@h/d?sslmode=verify-full", "unknown query key 'sslmode'"),
    ("mysql://u:p@h/d?ssl-ca", "ssl-ca needs a value"),
    ("mysql://u:p@h/d?ssl-ca=", "ssl-ca needs a value"),
    ("mysql://u:p@h/d?ssl-ca=/a.pem&", "unknown query key ''"),
    ("mysql://u:p@h/d?ssl-ca=/a.pem&ssl-ca=/b.pem", "gives ssl-ca twice"),
    ("mysql://u:p@h/d?ssl-ca=/a.pem&ssl-verify-identity=maybe",
     "ssl-verify-identity must be true or false, not 'maybe'"),
    ("mysql://u:p@h/d?ssl-ca=/a.pem&ssl-key=/k.pem", "ssl-key needs ssl-cert"),
    ("mysql://u:p@h/d#frag", "fragments are not supported"),
    ("sqlite://host/x.db", "no host"),
    ("sqlite://x.db", "no host"),
    ("sqlite:///", "no file name"),
    ("sqlite:///dir/", "no file name"),
    ("sqlite:///x.db?mode=ro", "query strings"),
])
def test_bad_urls_are_refused_with_the_reason_and_the_expected_shapes(url: str,
                                                                      reason: str) -> None:
    with pytest.raises(BadDbUrl) as info:
        parse_db_url(url)
    assert reason in str(info.value)
    assert "sqlite:////absolute/path.db" in str(info.value)


def test_urls_round_trip_and_redact() -> None:
    url = "mysql://u%40x:p%3A%2F%40@db.local:3306/runs"
    parsed = parse_db_url(url)
    assert parsed.url == url
    assert parsed.redacted() == "mysql://u%40x:***@db.local:3306/runs"
    assert "p:/@" not in repr(parsed)
    assert parse_db_url(parsed.url) == parsed
    assert parse_db_url("sqlite:////a/b.db").url == "sqlite:////a/b.db"
    assert parse_db_url("mysql://u@[::1]:3306/runs").url == "mysql://u@[::1]:3306/runs"
    assert parse_db_url("mariadb://u@h/runs").url == "mysql://u@h:3306/runs"
    assert parse_db_url("sqlite:///my%20runs.db").url == "sqlite:///my%20runs.db"


@pytest.mark.parametrize("url, expected", [
    ("mysql://u@h/d?ssl-ca=/etc/ca.pem",
     MysqlUrl(host="h", port=3306, database="d", user="u", ca_file="/etc/ca.pem")),
    ("mysql://u@h/d?ssl-ca=ca.pem&ssl-verify-identity=false",
     MysqlUrl(host="h", port=3306, database="d", user="u", ca_file="ca.pem",
              verify_identity=False)),
    ("mysql://u@h/d?ssl-verify-identity=TRUE&ssl-ca=/c%20a+b.pem",
     MysqlUrl(host="h", port=3306, database="d", user="u", ca_file="/c a+b.pem")),
    ("mysql://u@h/d?ssl-ca=/ca.pem&ssl-cert=/me.pem&ssl-key=/me.key",
     MysqlUrl(host="h", port=3306, database="d", user="u", ca_file="/ca.pem",
              cert_file="/me.pem", key_file="/me.key")),
])
def test_tls_query_keys_parse_and_round_trip(url: str, expected: MysqlUrl) -> None:
    parsed = parse_db_url(url)
    assert parsed == expected
    assert parsed.tls
    assert parse_db_url(parsed.url) == parsed
    assert parse_db_url(parsed.redacted()) == parsed  # no password: nothing hidden


def test_a_url_without_ssl_ca_is_plain_and_verifies_identity_by_default() -> None:
    parsed = parse_db_url("mysql://u:p@h/d")
    assert isinstance(parsed, MysqlUrl)
    assert not parsed.tls and parsed.verify_identity


def test_the_redacted_url_keeps_the_tls_keys_but_not_the_password() -> None:
    parsed = parse_db_url("mysql://u:s3cret@h/d?ssl-ca=/ca.pem&ssl-verify-identity=0")
    assert parsed.redacted() == "mysql://u:***@h:3306/d?ssl-ca=/ca.pem&ssl-verify-identity=false"
    assert "s3cret" not in repr(parsed)


def test_a_bad_url_does_not_echo_its_password() -> None:
    with pytest.raises(BadDbUrl) as info:
        parse_db_url("mysql://u:p@ss/word@h:0x/d")
    assert "ss/word" not in str(info.value) and "u:***@" in str(info.value)


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:2379", ("127.0.0.1", 2379)),
    ("etcd-1.internal:2379", ("etcd-1.internal", 2379)),
    ("[::1]:2379", ("[::1]", 2379)),
])
def test_good_endpoints(text: str, expected: tuple[str, int]) -> None:
    assert parse_endpoint(text) == expected


@pytest.mark.parametrize("text", [
    "127.0.0.1", ":2379", "h:", "h:0", "h:65536", "http://h:2379", "::1:2379", "h :1",
])
def test_bad_endpoints(text: str) -> None:
    with pytest.raises(BadEndpoint, match="is not host:port"):
        parse_endpoint(text)
