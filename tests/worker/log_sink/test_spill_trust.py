"""The spill directory trusts nothing a local user could plant (issue #10, point 7).

Regression tests of the audit: a symlink named like a spill file read a root-only file
into the store and truncated another; any ``*.jsonl`` was replayed as our records; a
group-writable or foreign spill directory was used as is. Each file planted here holds
valid run records, so reading it would show as pending records.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.store import RunRecord
from worker.clock import SystemClock
from worker.log_sink.spill import (
    Rejection,
    SpillDirUnsafe,
    SpillFile,
    SpillFileUnsafe,
    is_spill_name,
)
from log_sink_testkit import records

ROOT = Path(__file__).resolve().parents[3]
NOBODY = 65534


def jsonl(rs: list[RunRecord]) -> str:
    return "".join(json.dumps(r.to_json()) + "\n" for r in rs)


@pytest.fixture
def spill_dir(tmp_path: Path) -> Path:
    d = tmp_path / "spill"
    d.mkdir(mode=0o700)
    return d


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A root-only file (as the audit's target) holding what looks like run records."""
    d = tmp_path / "root-only"
    d.mkdir(mode=0o700)
    path = d / "secret"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, jsonl(records(3, prefix="secret")).encode())
    os.close(fd)
    return path


async def open_spill(spill_dir: Path, worker_id: str = "w1") -> SpillFile:
    return await SpillFile.open(spill_dir, worker_id, SystemClock())


async def test_a_symlink_named_like_an_orphan_is_neither_read_nor_truncated(spill_dir, secret):
    before = secret.read_bytes()
    (spill_dir / "w2.jsonl").symlink_to(secret)
    spill = await open_spill(spill_dir)
    try:
        assert spill.pending == 0 and spill.adopted == ()
    finally:
        spill.close()
    assert secret.read_bytes() == before
    assert (spill_dir / "w2.jsonl").is_symlink()  # left alone, not deleted


async def test_a_symlink_at_our_own_name_is_refused_and_its_target_untouched(spill_dir, secret):
    before = secret.read_bytes()
    (spill_dir / "w1.jsonl").symlink_to(secret)
    with pytest.raises(SpillFileUnsafe, match="w1.jsonl is a symbolic link"):
        await open_spill(spill_dir)
    assert secret.read_bytes() == before


async def test_a_symlink_at_our_rejected_file_is_not_written_through(spill_dir, secret):
    before = secret.read_bytes()
    (spill_dir / "w1.jsonl").write_text('{"torn')  # a torn line: it goes to the rejected file
    os.chmod(spill_dir / "w1.jsonl", 0o600)
    (spill_dir / "w1.rejected.jsonl").symlink_to(secret)
    with pytest.raises(SpillFileUnsafe, match="rejected.jsonl is a symbolic link"):
        await open_spill(spill_dir)
    assert secret.read_bytes() == before


async def test_a_jsonl_file_not_named_after_a_worker_id_is_not_replayed(spill_dir):
    for name in ("-evil.jsonl", "a b.jsonl", ".hidden.jsonl", "x" * 200 + ".jsonl"):
        (spill_dir / name).write_text(jsonl(records(2, prefix=name[:8])))
    spill = await open_spill(spill_dir)
    try:
        assert spill.pending == 0 and spill.adopted == ()
    finally:
        spill.close()
    for name in ("-evil.jsonl", "a b.jsonl", ".hidden.jsonl", "x" * 200 + ".jsonl"):
        assert len((spill_dir / name).read_text().splitlines()) == 2


async def test_a_spill_file_owned_by_another_user_is_not_replayed(spill_dir):
    foreign = spill_dir / "w2.jsonl"
    foreign.write_text(jsonl(records(2, prefix="forged")))
    os.chown(foreign, NOBODY, NOBODY)
    spill = await open_spill(spill_dir)
    try:
        assert spill.pending == 0 and spill.adopted == ()
    finally:
        spill.close()
    assert len(foreign.read_text().splitlines()) == 2
    assert foreign.stat().st_uid == NOBODY


async def test_a_directory_or_fifo_named_like_a_spill_file_is_skipped(spill_dir):
    (spill_dir / "w2.jsonl").mkdir()
    os.mkfifo(spill_dir / "w3.jsonl", 0o600)
    (spill_dir / "w4.jsonl").write_text(jsonl(records(2, prefix="good")))
    spill = await open_spill(spill_dir)
    try:
        assert spill.pending == 2  # the one real orphan of ours is still adopted
        assert [p.name for p in spill.adopted] == ["w4.jsonl"]
    finally:
        spill.close()
    assert (spill_dir / "w2.jsonl").is_dir() and (spill_dir / "w3.jsonl").exists()


async def test_our_spill_and_rejected_files_are_created_0600(spill_dir):
    os.umask(old := os.umask(0))  # the loosest umask: the mode must come from open itself
    try:
        spill = await open_spill(spill_dir)
        try:
            await spill.append(records(1))
            await spill.reject([Rejection("test", line="x")])
        finally:
            mode = stat.S_IMODE((spill_dir / "w1.jsonl").stat().st_mode)
            spill.close()
    finally:
        os.umask(old)
    assert mode == 0o600
    assert stat.S_IMODE((spill_dir / "w1.rejected.jsonl").stat().st_mode) == 0o600


async def test_a_missing_spill_directory_is_created_0700(tmp_path):
    os.umask(old := os.umask(0))
    try:
        spill = await open_spill(tmp_path / "a" / "spill")
        spill.close()
    finally:
        os.umask(old)
    for d in (tmp_path / "a", tmp_path / "a" / "spill"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o770, 0o755, 0o701])
async def test_a_spill_directory_not_exactly_0700_is_refused(spill_dir, mode):
    os.chmod(spill_dir, mode)
    with pytest.raises(SpillDirUnsafe, match=f"mode {mode:04o}"):
        await open_spill(spill_dir)


async def test_a_spill_directory_of_another_user_is_refused(spill_dir):
    os.chown(spill_dir, NOBODY, NOBODY)
    with pytest.raises(SpillDirUnsafe, match="owned by nobody"):
        await open_spill(spill_dir)


def test_spill_names_are_worker_ids() -> None:
    assert is_spill_name("host-12-ab.jsonl") and is_spill_name("a.b:c.jsonl")
    for name in ("w1.rejected.jsonl", "-w.jsonl", "a/b.jsonl", ".jsonl", "w1.json", "w 1.jsonl"):
        assert not is_spill_name(name), name


# -- the worker process refuses to start ---------------------------------------------


def start_worker(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A worker whose directories are refused exits before it needs etcd."""
    return subprocess.run(
        [sys.executable, "-m", "worker", "--etcd", "127.0.0.1:1", "--id", "w1", *args],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")})


def test_worker_refuses_a_group_writable_spill_directory(tmp_path, spill_dir):
    os.chmod(spill_dir, 0o770)
    done = start_worker(tmp_path, "--spill-dir", str(spill_dir), "--state-dir", str(tmp_path))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert (f"spill directory {spill_dir} is owned by root with mode 0770" in lines[0]
            and "chmod 0700" in lines[0])


def test_worker_refuses_a_spill_directory_of_another_user(tmp_path, spill_dir):
    os.chown(spill_dir, NOBODY, NOBODY)
    done = start_worker(tmp_path, "--spill-dir", str(spill_dir), "--state-dir", str(tmp_path))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"worker: spill directory {spill_dir} is owned by nobody with mode 0700; it must be "
        f"owned by root with mode 0700: run 'chown root {spill_dir} && chmod 0700 "
        f"{spill_dir}', or choose another directory"]


def test_worker_refuses_a_world_writable_state_directory(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o777)
    os.chmod(state, 0o777)
    done = start_worker(tmp_path, "--state-dir", str(state))
    assert done.returncode == 2, done.stderr
    assert "state directory" in done.stderr and "mode 0777" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (state / "spill").exists()


def test_worker_refuses_to_start_with_a_symlink_at_its_own_spill_file(tmp_path, spill_dir, secret):
    before = secret.read_bytes()
    (spill_dir / "w1.jsonl").symlink_to(secret)
    done = start_worker(tmp_path, "--spill-dir", str(spill_dir), "--state-dir", str(tmp_path))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"worker: spill file {spill_dir}/w1.jsonl is a symbolic link: a worker uses only "
        f"regular files of its own user there; move it away"]
    assert secret.read_bytes() == before
