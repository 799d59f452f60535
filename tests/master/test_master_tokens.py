"""The tokens file: its format, each way it can be wrong (a one-line start-up error,
exit 2), and how the master identifies a token (hash compared with every entry)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.config import Config
from cluster.tokens import (Role, TokenEntry, TokensFileError, format_line, hash_token,
                            parse_tokens, read_tokens_file)
from master.auth import (ANONYMOUS, ExposureRefused, Identity, TokenAuth, check_exposure,
                         load_auth)

ROOT = Path(__file__).resolve().parents[2]
H1 = hash_token("one").hex()
H2 = hash_token("two").hex()


def test_a_file_with_comments_and_blank_lines_parses():
    entries = parse_tokens(["# who  role  hash", "", f"  ci operate {H1}  ",
                            f"dash read {H2} ", "   # indented comment"], "f")
    assert entries == (TokenEntry("ci", Role.OPERATE, bytes.fromhex(H1)),
                       TokenEntry("dash", Role.READ, bytes.fromhex(H2)))
    assert "one" not in repr(entries) and H1 not in repr(entries)


def test_the_hash_is_what_sha256sum_prints():
    printed = subprocess.run(["sha256sum"], input=b"s3cret", capture_output=True,
                             check=True).stdout.split()[0].decode()
    assert hash_token("s3cret").hex() == printed
    assert format_line("x", Role.ADMIN, hash_token("s3cret")) == f"x admin {printed}\n"


@pytest.mark.parametrize("line, reason", [
    (f"ci superuser {H1}", "line 2: unknown role 'superuser' (known: read, operate, admin)"),
    (f"ci operate", "line 2: expected 'name role sha256-hex', got 2 word(s)"),
    (f"ci operate {H1} extra", "line 2: expected 'name role sha256-hex', got 4 word(s)"),
    (f"-ci operate {H1}", "line 2: name '-ci' must match"),
    (f"ci operate {H1.upper()}", "line 2: the hash must be 64 lowercase hex digits"),
    ("ci operate my-plain-token", "line 2: the hash must be 64 lowercase hex digits"),
    (f"first read {H2}", "line 2: duplicate name 'first' (first on line 1)"),
    (f"other read {H1}", "line 2: same token hash as line 1"),
])
def test_each_bad_line_is_one_clear_error(line, reason):
    with pytest.raises(TokensFileError) as info:
        parse_tokens([f"first admin {H1}", line], "/etc/tokens")
    message = str(info.value)
    assert message.startswith("tokens file /etc/tokens, ") and reason in message
    assert "\n" not in message and "my-plain-token" not in message


def test_an_unreadable_or_symlinked_file_is_refused(tmp_path):
    with pytest.raises(TokensFileError, match="cannot read it: No such file"):
        read_tokens_file(str(tmp_path / "missing"))
    real = tmp_path / "real"
    real.write_text(f"a read {H1}\n")
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(TokensFileError, match="cannot read it"):
        read_tokens_file(str(tmp_path / "link"))
    assert read_tokens_file(str(real))[0].name == "a"


def test_identify_by_hash_with_the_single_token_as_admin(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(format_line("ci", Role.OPERATE, hash_token("one")))
    auth = load_auth(Config(api_token="single", tokens_file=str(path)))
    assert auth.identify("Bearer single") == Identity("admin", Role.ADMIN)
    assert auth.identify("bearer  one ") == Identity("ci", Role.OPERATE)
    for refused in (None, "", "Bearer", "Bearer two", "Basic one", "one",
                    "Bearer " + hash_token("one").hex()):
        assert auth.identify(refused) is None, refused
    assert "one" not in repr(auth)


def test_no_token_at_all_is_the_anonymous_admin_and_an_empty_file_lets_nobody_in(tmp_path):
    assert load_auth(Config()).identify(None) is ANONYMOUS
    empty = tmp_path / "tokens"
    empty.write_text("# nobody yet\n")
    closed = load_auth(Config(tokens_file=str(empty)))
    assert closed.enabled and closed.identify("Bearer anything") is None
    assert TokenAuth(()).identify("Bearer x") is None


def test_a_file_entry_cannot_take_the_single_tokens_name_or_token(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(format_line("admin", Role.READ, hash_token("other")))
    with pytest.raises(TokensFileError, match="'admin' is the single API token's"):
        load_auth(Config(api_token="single", tokens_file=str(path)))
    assert load_auth(Config(tokens_file=str(path))).identify("Bearer other").name == "admin"
    path.write_text(format_line("dup", Role.READ, hash_token("single")))
    with pytest.raises(TokensFileError, match="is the single API token"):
        load_auth(Config(api_token="single", tokens_file=str(path)))


def test_a_tokens_file_counts_as_auth_for_a_public_host(tmp_path):
    with pytest.raises(ExposureRefused):
        check_exposure(Config(api_host="0.0.0.0"))
    check_exposure(Config(api_host="0.0.0.0", tokens_file=str(tmp_path / "t")))


@pytest.mark.parametrize("content, expected", [
    (f"ci root {H1}\n", "tokens file {path}, line 1: unknown role 'root'"),
    (f"ci read {H1}\nci admin {H2}\n", "tokens file {path}, line 2: duplicate name 'ci'"),
    ("ci read\n", "tokens file {path}, line 1: expected 'name role sha256-hex'"),
    (None, "tokens file {path}: cannot read it: No such file or directory"),
])
def test_the_master_refuses_a_bad_tokens_file_at_start_with_exit_2(tmp_path, content,
                                                                   expected):
    path = tmp_path / "tokens"
    if content is not None:
        path.write_text(content)
    done = subprocess.run(
        [sys.executable, "-m", "master", "--tokens-file", str(path), "--etcd", "127.0.0.1:1",
         "--state-dir", str(tmp_path / "state")],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("master: " + expected.format(path=path)), \
        done.stderr
    assert "Traceback" not in done.stderr


async def test_the_master_rereads_the_tokens_file_when_it_changes(
        tmp_path, etcd_endpoint, etcd_prefix, caplog):
    import trio

    from master.auth import RELOAD_CHECK_S

    from master_testkit import make_config, running_master

    path = tmp_path / "tokens"
    path.write_text(format_line("first", Role.READ, hash_token("tok-AAA-1")))
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix, tokens_file=str(path))

    async def status(token: str) -> int:
        answer = await master.request("GET", "/api/v1/jobs", auth=False,
                                      headers={"Authorization": f"Bearer {token}"})
        return answer.status

    caplog.set_level(logging.INFO, logger="master.auth")
    async with running_master(config) as master:
        assert await status("tok-AAA-1") == 200
        assert await status("tok-BBB-2") == 401
        path.write_text(path.read_text() + format_line("second", Role.OPERATE,
                                                       hash_token("tok-BBB-2")))
        await trio.sleep(RELOAD_CHECK_S + 0.2)
        assert await status("tok-BBB-2") == 200  # the first request after it sees it
        path.write_text(format_line("second", Role.OPERATE, hash_token("tok-BBB-2")))
        await trio.sleep(RELOAD_CHECK_S + 0.2)
        assert await status("tok-AAA-1") == 401  # removed: refused without a restart
        path.write_text("second operate not-a-hash\n")  # a bad edit keeps what was there
        await trio.sleep(RELOAD_CHECK_S + 0.2)
        assert await status("tok-BBB-2") == 200
        # the single admin token and "second"; names may be logged, tokens never
        assert "keeping the 2 tokens read before" in caplog.text
        assert "tok-" not in caplog.text
        assert "reloaded: 3 tokens (admin, first, second)" in caplog.text
        await master.etcd.delete_prefix(config.prefix)
