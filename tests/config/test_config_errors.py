"""Every bad input becomes a ConfigError naming the setting and where it came from."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cluster.config import (
    BadValue, Config, ConfigError, InconsistentValues, UnknownKey, load_config,
)


def write(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "master.json"
    path.write_text(json.dumps(data))
    return path


def test_unknown_file_key_is_named_with_the_closest_known_key(tmp_path: Path) -> None:
    path = write(tmp_path, {"apiProt": 8070})
    with pytest.raises(UnknownKey) as info:
        load_config(path=path, env={})
    assert info.value.suggestion == "apiPort"
    assert str(info.value) == (
        f'unknown setting: key "apiProt" in {path} (did you mean "apiPort"?)')


def test_unknown_snake_case_key_suggests_the_field(tmp_path: Path) -> None:
    with pytest.raises(UnknownKey, match=r'"capacty".*did you mean "capacity"'):
        load_config(path=write(tmp_path, {"capacty": 3}), env={})


def test_unknown_key_with_nothing_close_has_no_suggestion(tmp_path: Path) -> None:
    with pytest.raises(UnknownKey) as info:
        load_config(path=write(tmp_path, {"zzzzqqq": 1}), env={})
    assert info.value.suggestion is None
    assert "did you mean" not in str(info.value)


def test_unknown_env_variable_is_named_with_a_suggestion() -> None:
    with pytest.raises(UnknownKey) as info:
        load_config(env={"SCHEDULER_XYZ": "1"})
    assert "environment variable SCHEDULER_XYZ" in str(info.value)
    with pytest.raises(UnknownKey, match="did you mean \"SCHEDULER_API_PORT\""):
        load_config(env={"SCHEDULER_API_PROT": "1"})


def test_unknown_flag_name_is_named_with_a_suggestion() -> None:
    with pytest.raises(UnknownKey, match=r'flag capasity.*"capacity"'):
        load_config(env={}, flags={"capasity": "3"})


@pytest.mark.parametrize("data, field, key, reason", [
    ({"apiPort": "8070"}, "api_port", "apiPort", "expected an integer, got a string"),
    ({"apiPort": True}, "api_port", "apiPort", "expected an integer, got a boolean"),
    ({"etcdEndpoints": "h:1"}, "etcd_endpoints", "etcdEndpoints",
     "expected a list of strings, got a string"),
    ({"etcdDialTimeout": "5s"}, "etcd_dial_timeout_s", "etcdDialTimeout",
     "expected a finite number of milliseconds, got a string"),
    ({"labels": {"a": 1}}, "labels", "labels", "expected an object of string values"),
    ({"capacity": None}, "capacity", "capacity", "expected an integer, got null"),
    ({"kill_grace_s": 10**400}, "kill_grace_s", "kill_grace_s", "expected a finite number"),
    ({"dbName": 5, "dbUri": "h:1", "dbUsername": "u"}, "db_url", "dbName",
     "expected a string, got an integer"),
])
def test_wrong_type_in_file_names_field_key_and_file(tmp_path: Path, data: dict[str, object],
                                                     field: str, key: str,
                                                     reason: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(BadValue) as info:
        load_config(path=path, env={})
    assert (info.value.field, info.value.source.key, info.value.source.path) \
        == (field, key, str(path))
    assert str(info.value).startswith(f'bad value for {field} (key "{key}" in {path}): ')
    assert reason in str(info.value)


@pytest.mark.parametrize("var, text, reason", [
    ("SCHEDULER_API_PORT", "80x", "expected an integer, got '80x'"),
    ("SCHEDULER_API_PORT", "70000", "must be a TCP port"),
    ("SCHEDULER_KILL_GRACE_S", "nan", "expected a finite number"),
    ("SCHEDULER_KILL_GRACE_S", "0", "must be greater than 0"),
    ("SCHEDULER_LABELS", "zone", "expected k=v pairs"),
    ("SCHEDULER_LABELS", "a=1,a=2", "expected k=v pairs"),
    ("SCHEDULER_LABELS", "a b=1", "label key 'a b'"),
    ("SCHEDULER_ETCD_ENDPOINTS", "", "needs at least one host:port"),
    ("SCHEDULER_ETCD_ENDPOINTS", "http://h:2379", "is not host:port"),
    ("SCHEDULER_ETCD_ENDPOINTS", "h:0", "is not host:port"),
    ("SCHEDULER_PREFIX", "cron/", "must start and end with '/'"),
    ("SCHEDULER_PREFIX", "/cron", "must start and end with '/'"),
    ("SCHEDULER_WORKER_ID", "a/b", "part of etcd keys"),
    ("SCHEDULER_CAPACITY", "0", "must be at least 1"),
    ("SCHEDULER_LOG_LEVEL", "loud", "must be one of DEBUG"),
    ("SCHEDULER_DB_URL", "postgres://h/d", "unsupported scheme 'postgres'"),
    ("SCHEDULER_API_TOKEN", "has space", "without spaces"),
])
def test_bad_env_value_names_the_variable(var: str, text: str, reason: str) -> None:
    with pytest.raises(BadValue) as info:
        load_config(env={var: text})
    assert f"environment variable {var}" in str(info.value)
    assert reason in str(info.value)


def test_bad_flag_value_names_the_flag() -> None:
    with pytest.raises(BadValue, match=re.escape("bad value for api_port (flag --port)")):
        load_config(env={}, flags={"api_port": "http"})
    with pytest.raises(BadValue, match=re.escape("(flag --db)")):
        load_config(env={}, flags={"db_url": "mysql://u:pw@h:1/"})


def test_secrets_are_not_echoed_in_errors() -> None:
    with pytest.raises(BadValue) as info:
        load_config(env={"SCHEDULER_DB_URL": "mysql://u:hunter2@h:99999/d"})
    assert "hunter2" not in str(info.value)


def test_seed_db_keys_need_uri_name_and_user(tmp_path: Path) -> None:
    with pytest.raises(BadValue, match=r"need dbUri \(host:port\), dbName and dbUsername"):
        load_config(path=write(tmp_path, {"dbUri": "h:3306"}), env={})
    with pytest.raises(BadValue, match=r'key "dbUri".*port'):
        data = {"dbUri": "h:x", "dbName": "d", "dbUsername": "u"}
        load_config(path=write(tmp_path, data), env={})


def test_lock_ttl_must_exceed_the_tolerated_skew() -> None:
    with pytest.raises(InconsistentValues) as info:
        load_config(env={"SCHEDULER_MAX_CLOCK_SKEW_S": "90"})
    message = str(info.value)
    assert "lock_ttl_s (60) must exceed max_clock_skew_s (90.0)" in message
    assert "environment variable SCHEDULER_MAX_CLOCK_SKEW_S" in message
    assert "the default of lock_ttl_s" in message


def test_direct_construction_validates_too() -> None:
    with pytest.raises(BadValue, match=re.escape("bad value for api_port (Config(api_port=...))")):
        Config(api_port=-1)
    with pytest.raises(BadValue, match="expected an integer, got str"):
        Config(capacity="3")  # type: ignore[arg-type]
    with pytest.raises(InconsistentValues):
        Config(job_log_batch_size=10, sink_memory_records=5)


def test_every_error_is_a_config_error() -> None:
    for cls in (BadValue, UnknownKey, InconsistentValues):
        assert issubclass(cls, ConfigError)
