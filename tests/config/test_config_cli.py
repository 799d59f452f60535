"""add_config_flags + config_from_cli: flags override only what was given, --help
is generated from the same table, and the file comes from --config or the env."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from cluster.config import (
    SETTINGS, Config, ConfigFileError, UnknownKey, add_config_flags, config_from_cli,
    fields_for,
)


def parser_for(fields: list[str] | tuple[str, ...] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="worker")
    add_config_flags(parser, fields)
    return parser


def test_absent_flags_leave_no_attribute_and_override_nothing(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"capacity": 5, "apiPort": 1234}))
    args = parser_for().parse_args(["--config", str(path), "--port", "9999"])
    assert not hasattr(args, "capacity")
    config = config_from_cli(args, env={"SCHEDULER_CAPACITY": "6"})
    assert (config.capacity, config.api_port) == (6, 9999)


def test_the_briefs_flag_names_map_to_fields() -> None:
    argv = ["--etcd", "a:1,b:2", "--db", "sqlite:////tmp/r.db", "--prefix", "/p/",
            "--id", "w1", "--labels", "zone=eu,gpu=1", "--capacity", "3",
            "--host", "0.0.0.0", "--port", "0", "--token", "t0k", "--webapp", "ui",
            "--metrics-port", "9100", "--job-log-commit-timeout-s", "0.5"]
    config = config_from_cli(parser_for().parse_args(argv), env={})
    assert config.etcd_endpoints == ("a:1", "b:2")
    assert config.db_url == "sqlite:////tmp/r.db"
    assert (config.prefix, config.worker_id, config.capacity) == ("/p/", "w1", 3)
    assert config.labels == {"zone": "eu", "gpu": "1"}
    assert (config.api_host, config.api_port, config.api_token) == ("0.0.0.0", 0, "t0k")
    assert (config.webapp_dir, config.metrics_port) == ("ui", 9100)
    assert config.job_log_commit_timeout_s == 0.5


def test_config_file_comes_from_flag_then_env_then_argument(tmp_path: Path) -> None:
    paths = {}
    for name, port in [("flag", 1), ("env", 2), ("arg", 3)]:
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps({"api_port": port}))
    env = {"SCHEDULER_CONFIG": str(paths["env"])}
    with_flag = parser_for().parse_args(["--config", str(paths["flag"])])
    without = parser_for().parse_args([])
    assert config_from_cli(with_flag, env=env, config_path=paths["arg"]).api_port == 1
    assert config_from_cli(without, env=env, config_path=paths["arg"]).api_port == 2
    assert config_from_cli(without, env={}, config_path=paths["arg"]).api_port == 3
    assert config_from_cli(without, env={}) == Config()


def test_a_named_config_file_must_exist(tmp_path: Path) -> None:
    args = parser_for().parse_args(["--config", str(tmp_path / "missing.json")])
    with pytest.raises(ConfigFileError, match=r"missing\.json"):
        config_from_cli(args, env={})


def test_help_states_each_flags_default_and_env_variable() -> None:
    text = " ".join(parser_for(fields_for("worker")).format_help().split())
    assert "--capacity N most runs at once on this worker [default: 64; env " \
           "SCHEDULER_CAPACITY]" in text
    assert "--labels K=V,..." in text and "[default: unset; env SCHEDULER_LABELS]" in text
    assert "--port" not in text  # an API flag is the master's, not the worker's
    assert "--config PATH" in text


def test_role_field_lists_split_the_table() -> None:
    master, worker = set(fields_for("master")), set(fields_for("worker"))
    assert {"api_port", "api_token", "webapp_dir"} <= master - worker
    assert {"worker_id", "labels", "capacity", "bash_path"} <= worker - master
    assert {"etcd_endpoints", "db_url", "prefix"} <= master & worker
    assert master | worker == {s.name for s in SETTINGS}


def test_every_setting_has_a_unique_flag_and_env_variable() -> None:
    flags = [s.flag for s in SETTINGS]
    envs = [s.env for s in SETTINGS]
    assert len(set(flags)) == len(flags) and len(set(envs)) == len(envs)
    assert all(e.startswith("SCHEDULER_") for e in envs)


def test_unknown_field_name_for_flags_is_a_config_error() -> None:
    with pytest.raises(UnknownKey, match='"api_port"'):
        parser_for(["api_prot"])


def test_an_unknown_flag_is_argparse_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parser_for().parse_args(["--capacityy", "3"])
    assert info.value.code == 2
    assert "--capacityy" in capsys.readouterr().err
