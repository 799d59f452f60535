"""Secrets come from the environment or from files; a flag works but is warned about."""

from __future__ import annotations

import argparse

import pytest

from cluster.config import (
    BadValue,
    InconsistentValues,
    add_config_flags,
    default_state_dir,
    load_config,
    secret_flag_warnings,
)


def test_a_token_file_fills_the_token_and_a_trailing_newline_is_dropped(tmp_path) -> None:
    path = tmp_path / "token"
    path.write_text("s3cret-token\n")
    config = load_config(env={}, flags={"api_token_file": str(path)})
    assert config.api_token == "s3cret-token"
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize("secret", ["etcd_password", "db_password"])
def test_every_password_has_its_file(tmp_path, secret) -> None:
    path = tmp_path / "pw"
    path.write_text("pa55word")
    config = load_config(env={f"SCHEDULER_{secret.upper()}_FILE": str(path)})
    assert getattr(config, secret) == "pa55word"


def test_a_secret_and_its_file_together_are_refused(tmp_path) -> None:
    path = tmp_path / "token"
    path.write_text("abc")
    with pytest.raises(InconsistentValues, match="api_token is given twice"):
        load_config(env={"SCHEDULER_API_TOKEN": "xyz"}, flags={"api_token_file": str(path)})


@pytest.mark.parametrize("content", ["", "two words", "a\nb"])
def test_a_secret_file_must_hold_one_value(tmp_path, content) -> None:
    path = tmp_path / "token"
    path.write_text(content)
    with pytest.raises(BadValue, match="one value on one line") as info:
        load_config(env={}, flags={"api_token_file": str(path)})
    assert "two" not in str(info.value)  # the content is never echoed


def test_a_missing_secret_file_names_the_file_not_the_secret(tmp_path) -> None:
    with pytest.raises(BadValue, match=r"cannot read .*nope: No such file"):
        load_config(env={}, flags={"db_password_file": str(tmp_path / "nope")})


def test_a_symlinked_secret_file_is_not_followed(tmp_path) -> None:
    (tmp_path / "real").write_text("abc")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(BadValue, match="cannot read"):
        load_config(env={}, flags={"api_token_file": str(tmp_path / "link")})


def test_the_db_password_replaces_the_urls() -> None:
    config = load_config(env={"SCHEDULER_DB_PASSWORD": "pw2"},
                         flags={"db_url": "mysql://u@db:3306/sched"})
    assert config.db.password == "pw2"  # type: ignore[union-attr]
    assert "pw2" not in repr(config)


def test_secrets_typed_as_flags_are_warned_about_without_the_secret() -> None:
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    args = parser.parse_args(["--token=tok123", "--db", "mysql://u:pw9@h/db",
                              "--etcd-password", "pw7", "--port", "1"])
    warnings = secret_flag_warnings(args)
    assert len(warnings) == 3
    assert not any(s in w for w in warnings for s in ("tok123", "pw9", "pw7"))
    assert any("SCHEDULER_API_TOKEN or --token-file" in w for w in warnings)
    assert not secret_flag_warnings(parser.parse_args(["--db", "mysql://u@h/db"]))


def test_the_default_state_dir_is_absolute_and_never_the_working_dir() -> None:
    assert str(default_state_dir({}, euid=0)) == "/var/lib/scheduler"
    assert str(default_state_dir({"XDG_STATE_HOME": "/x/state"}, euid=1000)) \
        == "/x/state/scheduler"
    relative = default_state_dir({"XDG_STATE_HOME": "rel"}, euid=1000)
    assert relative.is_absolute() and str(relative).endswith(".local/state/scheduler")


def test_an_etcd_client_certificate_needs_its_key_and_a_user_its_password(tmp_path) -> None:
    with pytest.raises(InconsistentValues, match="etcd_cert_file and etcd_key_file"):
        load_config(env={}, flags={"etcd_cert_file": "/etc/c.pem"})
    with pytest.raises(InconsistentValues, match="etcd_user needs its password"):
        load_config(env={}, flags={"etcd_user": "scheduler"})
    path = tmp_path / "pw"
    path.write_text("pa55word")
    config = load_config(env={"SCHEDULER_ETCD_PASSWORD_FILE": str(path)},
                         flags={"etcd_user": "scheduler"})
    assert (config.etcd_user, config.etcd_password) == ("scheduler", "pa55word")
