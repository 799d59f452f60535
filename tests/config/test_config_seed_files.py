"""The seed's master.json and worker.json, exactly as its document prints them
(with `//` comments and `apiReadTimeOut`'s odd casing), load with the right values."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.config import (
    Config, ConfigFileError, DuplicateKey, MysqlUrl, SqliteUrl, load_config, read_config_file,
    strip_line_comments,
)

SEED = Path(__file__).parent / "seed"


def test_seed_master_json_loads_with_ms_converted_and_db_url_built() -> None:
    config = load_config(path=SEED / "master.json", env={})
    assert config.api_port == 8070
    assert config.api_read_timeout_s == 5.0  # "apiReadTimeOut": 5000 ms
    assert config.api_write_timeout_s == 5.0
    assert config.etcd_endpoints == ("120.79.182.28:2379",)
    assert config.etcd_dial_timeout_s == 5.0
    assert config.webapp_dir == "./webapp"
    assert config.db_url == "mysql://root:admin@127.0.0.1:3306/scheduler_log"
    assert config.db == MysqlUrl(host="127.0.0.1", port=3306, database="scheduler_log",
                                 user="root", password="admin")


def test_seed_worker_json_loads_with_ms_converted_and_db_url_built() -> None:
    config = load_config(path=SEED / "worker.json", env={})
    assert config.etcd_endpoints == ("120.79.182.28:2379",)
    assert config.etcd_dial_timeout_s == 5.0
    assert config.bash_path == "/usr/bin/bash"
    assert config.db_url == "mysql://root:admin@127.0.0.1:3306/scheduler_log"
    assert config.log_chan_len == 1000
    assert config.job_log_batch_size == 100
    assert config.job_log_commit_timeout_s == 1.0  # "jobLogCommitTimeOut": 1000 ms


def test_seed_files_leave_everything_else_at_the_defaults() -> None:
    config = load_config(path=SEED / "worker.json", env={})
    defaults = Config()
    assert config.prefix == defaults.prefix == "/cron/"
    assert config.capacity == defaults.capacity
    assert config.api_port == defaults.api_port


def test_no_file_and_no_env_gives_the_embedded_sqlite_default() -> None:
    config = load_config(env={})
    assert config == Config()
    assert config.db_url is None
    assert isinstance(config.db, SqliteUrl)
    assert config.db.path == str(config.state_path / "runs.db")
    assert config.db.path.startswith("/")  # never relative to the working directory


def test_millisecond_keys_keep_fractions() -> None:
    config = Config.from_mapping({"jobLogCommitTimeout": 700, "apiReadTimeout": 1.5})
    assert config.job_log_commit_timeout_s == 0.7
    assert config.api_read_timeout_s == 0.0015


def test_snake_case_keys_are_in_their_own_units() -> None:
    config = Config.from_mapping({"api_read_timeout_s": 2.5, "etcd_dial_timeout_s": 3})
    assert config.api_read_timeout_s == 2.5
    assert config.etcd_dial_timeout_s == 3.0


def test_db_user_and_password_are_url_quoted() -> None:
    config = Config.from_mapping({"dbUri": "db.example:3307", "dbName": "runs",
                                  "dbUsername": "a@b", "dbPassword": "p:/@%ss"})
    assert config.db == MysqlUrl(host="db.example", port=3307, database="runs",
                                 user="a@b", password="p:/@%ss")
    assert "p:/@%ss" not in config.db_url


def test_db_uri_without_port_defaults_to_3306_and_the_password_is_optional() -> None:
    config = Config.from_mapping({"dbUri": "mysql.local", "dbName": "runs",
                                  "dbUsername": "me"})
    assert config.db == MysqlUrl(host="mysql.local", port=3306, database="runs", user="me")


def test_comment_markers_inside_strings_are_kept() -> None:
    text = '{"a": "http://x//y", // gone\n "b": "say \\"//\\" ok"} // end'
    assert strip_line_comments(text) == (
        '{"a": "http://x//y",        \n "b": "say \\"//\\" ok"}       ')


def test_json_errors_point_at_the_original_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "apiPort": 1, // fine\n  "capacity": 2 // no comma\n  "x": 3\n}\n')
    with pytest.raises(ConfigFileError, match=r"bad\.json: line 4 column 3"):
        load_config(path=path, env={})


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", "expected a JSON object, got a list"),
    ('{"apiPort": NaN}', "NaN is not valid JSON"),
    ("", "line 1 column 1"),
])
def test_file_that_is_not_a_json_object_is_refused(tmp_path: Path, text: str,
                                                   message: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(ConfigFileError, match=message):
        read_config_file(path)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match=r"nope\.json: cannot read it"):
        load_config(path=tmp_path / "nope.json", env={})


def test_a_key_repeated_in_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"apiPort": 1, "apiPort": 2}')
    with pytest.raises(DuplicateKey, match='"apiPort"'):
        load_config(path=path, env={})


@pytest.mark.parametrize("data", [
    {"apiPort": 1, "api_port": 2},
    {"apiReadTimeout": 1, "apiReadTimeOut": 2},
    {"db_url": "sqlite:///x.db", "dbUri": "h:1", "dbName": "n"},
])
def test_one_setting_under_two_keys_is_refused(data: dict[str, object]) -> None:
    with pytest.raises(DuplicateKey):
        Config.from_mapping(data)
