"""scripts/local_cluster.py (``make run``): the master's command line carries the token
file, never the token; the token file is made 0600 by open itself and kept."""

from __future__ import annotations

import os
import stat

import local_cluster
from cluster.config import config_from_cli
from cluster.startup import parse_process_args


def test_the_master_gets_its_token_by_file_never_on_its_command_line(tmp_path) -> None:
    for token in ("-Ab3_x", "--x", "plain-token_9"):  # opaque text, whatever it starts with
        path = tmp_path / f"token{len(token)}"
        path.write_text(token + "\n")
        flags = local_cluster.master_flags(["--etcd", "127.0.0.1:1"], 8070, path)
        assert not any(token in flag for flag in flags)
        args = parse_process_args("master", "", flags)  # the master's own flags
        assert config_from_cli(args).api_token == token


def test_the_state_directory_keeps_one_token_made_0600_at_creation(tmp_path) -> None:
    old = os.umask(0)  # the loosest umask: the mode must come from the open call
    try:
        first = local_cluster.token_for(tmp_path)
    finally:
        os.umask(old)
    token = first.read_text().strip()
    assert len(token) == 48 and stat.S_IMODE(first.stat().st_mode) == 0o600
    assert local_cluster.token_for(tmp_path) == first and first.read_text().strip() == token
    assert sorted(p.name for p in tmp_path.iterdir()) == ["api-token"]  # no draft left


def test_a_state_directory_open_to_others_is_reported(tmp_path) -> None:
    (tmp_path / "logs").mkdir(mode=0o700)
    os.chmod(tmp_path, 0o700)
    assert local_cluster.open_to_others(tmp_path) == []
    (tmp_path / "runs.db").write_text("")
    os.chmod(tmp_path / "runs.db", 0o644)
    assert local_cluster.open_to_others(tmp_path) == [tmp_path / "runs.db"]
