"""defaults < file < SCHEDULER_* environment < flags actually given, field by field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster.config import Config, Labels, load_config

# field, file value (JSON), env text, flag text, and the value each gives
CASES = [
    ("api_port", 1001, "1002", "1003", (1001, 1002, 1003)),
    ("etcd_endpoints", ["f:1"], "e:1, e2:2", "c:1",
     (("f:1",), ("e:1", "e2:2"), ("c:1",))),
    ("etcd_dial_timeout_s", 1.5, "2.5", "3.5", (1.5, 2.5, 3.5)),
    ("prefix", "/file/", "/env/", "/flag/", ("/file/", "/env/", "/flag/")),
    ("db_url", "sqlite:///file.db", "sqlite:////env.db", "mysql://u:p@h:1/flag",
     ("sqlite:///file.db", "sqlite:////env.db", "mysql://u:p@h:1/flag")),
    ("labels", {"zone": "f"}, "zone=e,gpu=1", "zone=c",
     (Labels({"zone": "f"}), Labels({"zone": "e", "gpu": "1"}), Labels({"zone": "c"}))),
    ("worker_id", "w-file", "w-env", "w-flag", ("w-file", "w-env", "w-flag")),
    ("metrics_port", 9001, "9002", "9003", (9001, 9002, 9003)),
    ("capacity", 1, "2", "3", (1, 2, 3)),
]


def write(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("name, in_file, in_env, in_flag, expected", CASES,
                         ids=[c[0] for c in CASES])
def test_each_source_overrides_the_one_below(tmp_path: Path, name: str, in_file: object,
                                             in_env: str, in_flag: str,
                                             expected: tuple[object, object, object]) -> None:
    path = write(tmp_path, {name: in_file})
    env = {"SCHEDULER_" + name.upper(): in_env}
    default = getattr(Config(), name)
    assert getattr(load_config(env={}), name) == default
    assert getattr(load_config(path=path, env={}), name) == expected[0]
    assert getattr(load_config(path=path, env=env), name) == expected[1]
    assert getattr(load_config(path=path, env=env, flags={name: in_flag}), name) \
        == expected[2]
    assert getattr(load_config(env={}, flags={name: in_flag}), name) == expected[2]


def test_sources_mix_field_by_field(tmp_path: Path) -> None:
    path = write(tmp_path, {"apiPort": 1, "capacity": 2, "prefix": "/f/"})
    config = load_config(path=path, env={"SCHEDULER_CAPACITY": "20",
                                         "SCHEDULER_PREFIX": "/e/"},
                         flags={"prefix": "/c/"})
    assert (config.api_port, config.capacity, config.prefix) == (1, 20, "/c/")
    assert config.session_ttl_s == Config().session_ttl_s


def test_empty_env_value_unsets_an_optional_field(tmp_path: Path) -> None:
    path = write(tmp_path, {"metrics_port": 9000, "api_token": "s3cret"})
    config = load_config(path=path, env={"SCHEDULER_METRICS_PORT": "",
                                         "SCHEDULER_API_TOKEN": ""})
    assert config.metrics_port is None
    assert config.api_token is None


def test_etcd_and_test_variables_are_never_read() -> None:
    env = {"ETCD_ENDPOINTS": "x:1", "ETCDCTL_ENDPOINTS": "y:1",
           "SCHEDULER_TEST_ETCD": "127.0.0.1:1", "SCHEDULER_TEST_MYSQL": "mysql://a/b",
           "SCHEDULER_CONFIG": "ignored-here.json", "PATH": "/bin"}
    assert load_config(env=env) == Config()


def test_env_bools_ints_floats_and_lists_are_converted() -> None:
    config = load_config(env={"SCHEDULER_KILL_GRACE_S": "0.25",
                              "SCHEDULER_LOG_RETENTION_DAYS": " 7 ",
                              "SCHEDULER_ETCD_ENDPOINTS": "a:1,,b:2,",
                              "SCHEDULER_LABELS": ""})
    assert config.kill_grace_s == 0.25
    assert config.log_retention_days == 7
    assert config.etcd_endpoints == ("a:1", "b:2")
    assert config.labels == {}


def test_config_is_frozen_and_hashable() -> None:
    config = Config(labels={"a": "b"}, etcd_endpoints=["h:1"])  # type: ignore[arg-type]
    assert isinstance(config.labels, Labels)
    assert config.etcd_endpoints == ("h:1",)
    with pytest.raises(AttributeError):
        config.api_port = 1  # type: ignore[misc]
    assert hash(config) == hash(Config(labels=Labels({"a": "b"}), etcd_endpoints=("h:1",)))


def test_repr_and_redacted_hide_secrets() -> None:
    config = Config(db_url="mysql://u:hunter2@h:1/d", api_token="tok-123")
    assert "hunter2" not in repr(config) and "tok-123" not in repr(config)
    assert config.redacted()["db_url"] == "mysql://u:***@h:1/d"
    assert config.redacted()["api_token"] == "***"
