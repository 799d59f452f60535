"""schedctl token add/list/remove and schedctl audit against a real ``python -m master``
that reads the tokens file they wrote: each role does what it may, is refused what it
may not (403), and the audit trail names the token of every change."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import httpx
import pytest
import trio

import services
from cluster.tokens import hash_token

from e2e_harness import ROOT, ServiceProcess, wait_healthy

pytestmark = pytest.mark.slow

SCHEDCTL = [sys.executable, "-m", "master.cli"]


def schedctl(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in ("SCHEDULER_API_TOKEN", "SCHEDULER_TOKENS_FILE")}
    return subprocess.run([*SCHEDCTL, *argv], env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def add_token(tokens, name: str, role: str) -> str:
    done = schedctl("token", "add", name, "--role", role, "--tokens-file", str(tokens))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sched_") and len(lines[0]) >= 40
    assert lines[0] not in done.stderr
    return lines[0]


@pytest.fixture
async def master_with_tokens(tmp_path, etcd_endpoint, etcd_prefix):
    tokens = tmp_path / "tokens"
    made = {name: add_token(tokens, name, role)
            for name, role in (("viewer", "read"), ("ci", "operate"), ("boss", "admin"))}
    port = services.free_port()
    master = ServiceProcess("master", [
        "--etcd", etcd_endpoint, "--prefix", etcd_prefix, "--port", str(port),
        "--db", f"sqlite:///{tmp_path}/runs.db", "--state-dir", str(tmp_path / "state"),
        "--tokens-file", str(tokens)], tmp_path / "master.log", "master").start()
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(url, master)
        yield url, tokens, made
    finally:
        master.terminate()
    assert not any(token in master.log_tail() for token in made.values())


async def test_token_commands_and_roles_and_audit_end_to_end(master_with_tokens, tmp_path):
    url, tokens, made = master_with_tokens
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    text = tokens.read_text()
    for name, token in made.items():
        assert token not in text and hash_token(token).hex() in text

    again = schedctl("token", "add", "ci", "--role", "read", "--tokens-file", str(tokens))
    assert again.returncode == 2 and "already has a token named 'ci'" in again.stderr
    assert again.stdout == ""
    listed = schedctl("token", "list", "--tokens-file", str(tokens))
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["NAME", "ROLE", "viewer", "read", "ci", "operate",
                                     "boss", "admin"]
    assert "hash" not in listed.stdout.lower()
    as_json = schedctl("--json", "token", "list", env={"SCHEDULER_TOKENS_FILE": str(tokens)})
    assert json.loads(as_json.stdout)["tokens"][1] == {"name": "ci", "role": "operate"}

    boss = {"SCHEDULER_URL": url, "SCHEDULER_API_TOKEN": made["boss"]}
    put = schedctl("jobs", "put", "e2e-roles", "--command", "true", "--cron", "@every 1h",
                   env=boss)
    assert put.returncode == 0, put.stderr

    viewer_file = tmp_path / "viewer-token"
    viewer_file.write_text(made["viewer"] + "\n")
    viewer = {"SCHEDULER_URL": url}
    refused = schedctl("jobs", "pause", "e2e-roles", "--token-file", str(viewer_file),
                       env=viewer)
    assert refused.returncode == 1
    assert "403 forbidden" in refused.stderr and "needs role operate" in refused.stderr
    assert schedctl("jobs", "list", "--token-file", str(viewer_file), env=viewer
                    ).returncode == 0
    who = schedctl("whoami", "--token-file", str(viewer_file), env=viewer)
    assert (who.returncode, who.stdout) == (0, "viewer (read)\n"), who.stderr
    who = schedctl("--json", "whoami", env={**viewer, "SCHEDULER_API_TOKEN": made["ci"]})
    assert json.loads(who.stdout) == {"name": "ci", "role": "operate"}

    flagged = schedctl("--url", url, "--token", made["ci"], "jobs", "pause", "e2e-roles")
    assert flagged.returncode == 0, flagged.stderr
    assert "warning: --token shows in the process list" in flagged.stderr
    deleted = schedctl("jobs", "delete", "e2e-roles", env={"SCHEDULER_URL": url,
                                                          "SCHEDULER_API_TOKEN": made["ci"]})
    assert deleted.returncode == 1 and "403 forbidden" in deleted.stderr

    audit = schedctl("--json", "audit", "--job", "e2e-roles", env=boss)
    assert audit.returncode == 0, audit.stderr
    entries = json.loads(audit.stdout)["entries"]
    assert [(e["token"], e["role"], e["action"]) for e in entries] == [
        ("ci", "operate", "pause"), ("boss", "admin", "put")]
    table = schedctl("audit", "--limit", "1", env=boss)
    assert table.returncode == 0, table.stderr
    assert "ci" in table.stdout and "pause" in table.stdout and "--cursor" in table.stdout
    unauthorized = schedctl("audit", env={"SCHEDULER_URL": url})
    assert unauthorized.returncode == 4

    removed = schedctl("token", "remove", "viewer", "--tokens-file", str(tokens))
    assert removed.returncode == 0, removed.stderr
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    assert schedctl("token", "list", "--tokens-file", str(tokens)).stdout.split() == [
        "NAME", "ROLE", "ci", "operate", "boss", "admin"]
    missing = schedctl("token", "remove", "viewer", "--tokens-file", str(tokens))
    assert missing.returncode == 2 and "no token named 'viewer'" in missing.stderr
    await trio.sleep(1.5)  # the running master re-reads the file: no restart
    gone = schedctl("jobs", "list", "--token-file", str(viewer_file), env=viewer)
    assert gone.returncode == 4, gone.stderr
