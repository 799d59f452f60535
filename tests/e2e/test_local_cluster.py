"""scripts/local_cluster.py builds the master's command line; a token is opaque text
and must reach the master whole, whatever its first character."""

from __future__ import annotations

import local_cluster
from master.__main__ import parse_args


def test_a_token_that_looks_like_a_flag_reaches_the_master_whole() -> None:
    for token in ("-Ab3_x", "--x", "plain-token_9"):
        args = parse_args(local_cluster.master_flags(["--etcd", "127.0.0.1:1"], 8070, token))
        assert args.api_token == token


def test_the_state_directory_keeps_one_token(tmp_path) -> None:
    first = local_cluster.token_for(tmp_path)
    assert local_cluster.token_for(tmp_path) == first
    assert (tmp_path / "api-token").stat().st_mode & 0o777 == 0o600
