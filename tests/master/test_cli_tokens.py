"""schedctl and tokens: the token file and the warning for a token flag, the audit
log, and adding, listing and removing tokens in a local tokens file.
"""

from __future__ import annotations

import time

import pytest

from cli_testkit import NOW_MS, JOB, TOKEN, FakeMaster, error, ok, run
from cli_testkit import utc_and_token  # noqa: F401 (an autouse fixture: applies where imported)


# ---------------------------------------------------------------- tokens and audit


def test_token_file_and_the_warning_for_a_token_flag(
        tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMaster({("GET", "/api/v1/jobs"): ok({"jobs": []})})
    path = tmp_path / "token"
    path.write_text("from-file\n")
    assert run(fake, "jobs", "list", "--token-file", str(path)) == 0
    assert fake.last.headers["authorization"] == "Bearer from-file"
    assert "warning" not in capsys.readouterr().err
    assert run(fake, "jobs", "list", "--token", "t2") == 0
    err = capsys.readouterr().err
    assert "warning: --token shows in the process list" in err and "t2" not in err
    assert run(fake, "jobs", "list", "--token", "t2", "--token-file", str(path)) == 2
    assert "not both" in capsys.readouterr().err
    for content in ("", "two words\n"):
        path.write_text(content)
        assert run(fake, "jobs", "list", "--token-file", str(path)) == 2
        assert "must hold one token on one line" in capsys.readouterr().err
    assert run(fake, "jobs", "list", "--token-file", str(tmp_path / "none")) == 2
    assert "cannot read --token-file" in capsys.readouterr().err


def test_audit_prints_who_did_what_and_a_403_is_one_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    entries = [
        {"id": "0001714564800000-00000000000000a1", "time": NOW_MS, "token": "ci",
         "role": "operate", "action": "kill", "job": "backup", "via": "api",
         "change": {"runId": "r1"}},
        {"id": "0001714564700000-00000000000000a0", "time": NOW_MS - 100_000, "token": "boss",
         "role": "admin", "action": "put", "job": "backup", "via": "seed",
         "change": {"created": True, "spec": {**JOB, "command": "echo \x1b[31m"}}},
    ]
    fake = FakeMaster({
        ("GET", "/api/v1/audit"): ok({"entries": entries, "nextCursor": "abc",
                                      "partial": True}),
        ("DELETE", "/api/v1/jobs/backup"): error(
            403, "forbidden", "token 'ci' has role operate; this needs role admin")})
    assert run(fake, "audit", "--job", "backup", "--token-name", "ci", "--limit", "2") == 0
    assert dict(fake.last.url.params) == {"job": "backup", "token": "ci", "limit": "2"}
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "TOKEN", "ROLE", "ACTION", "JOB", "VIA", "CHANGE"]
    assert lines[1].split()[1:6] == ["ci", "operate", "kill", "backup", "api"]
    assert "run r1" in lines[1] and "created: 0 3 * * * echo" in lines[2]
    assert "\x1b" not in out and "only entries not yet moved" in out
    assert "--cursor abc" in out
    assert run(fake, "jobs", "delete", "backup") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["schedctl: 403 forbidden: token 'ci' has role operate; this needs role "
                   "admin"]


def test_token_add_list_remove_on_a_local_file(
        tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    import stat

    from cluster.tokens import hash_token, read_tokens_file

    fake = FakeMaster({})
    path = tmp_path / "tokens"
    assert run(fake, "token", "add", "ci", "--role", "operate") == 2
    assert "--tokens-file" in capsys.readouterr().err
    assert run(fake, "token", "add", "ci", "--role", "operate", "--tokens-file", str(path)) == 0
    captured = capsys.readouterr()
    token = captured.out.strip()
    assert token.startswith("sched_") and token not in captured.err
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_tokens_file(str(path))[0].digest == hash_token(token)
    assert run(fake, "token", "add", "bad name", "--role", "read", "--tokens-file",
               str(path)) == 2
    assert run(fake, "token", "add", "x", "--role", "root", "--tokens-file", str(path)) == 2
    path.write_text(path.read_text() + "# kept comment\nbroken line\n")
    assert run(fake, "token", "add", "y", "--role", "read", "--tokens-file", str(path)) == 2
    assert "line 3: expected 'name role sha256-hex'" in capsys.readouterr().err
    path.write_text(path.read_text().replace("broken line\n", ""))
    assert run(fake, "token", "add", "y", "--role", "read", "--tokens-file", str(path)) == 0
    capsys.readouterr()
    assert run(fake, "token", "remove", "ci", "--tokens-file", str(path)) == 0
    assert "# kept comment" in path.read_text()
    assert [e.name for e in read_tokens_file(str(path))] == ["y"]
    assert fake.requests == []  # all local: the master is never asked
