"""cluster.private_files: our files are private (umask 077), jobs' are not (a job gets
the umask the worker started with: ``worker.executor.spawn``); private directories, made and
checked."""

from __future__ import annotations

import os
import stat

import pytest

from cluster import private_files
from worker.executor.process import start_process


@pytest.fixture
def restricted(monkeypatch):
    """restrict_umask() as a worker's main calls it, from a process umask of 022."""
    monkeypatch.setattr(private_files, "_original_umask", None)
    old = os.umask(0o022)
    try:
        assert private_files.restrict_umask() == 0o022
        yield
    finally:
        os.umask(old)


async def test_a_job_gets_the_umask_the_worker_started_with(restricted, tmp_path):
    assert os.umask(0o077) == 0o077  # the worker itself: private
    process = await start_process(
        ["/bin/bash", "-c", f"umask; touch {tmp_path}/job-file"], env=os.environ,
        cap_bytes=1000, kill_grace_s=1)
    result = await process.wait()
    assert result.stdout == b"0022\n"
    assert stat.S_IMODE((tmp_path / "job-file").stat().st_mode) == 0o644


def test_restrict_umask_is_idempotent_and_keeps_the_first_umask(restricted, tmp_path):
    assert private_files.restrict_umask() == 0o022
    assert private_files.original_umask() == 0o022
    (tmp_path / "ours").write_text("x")
    assert stat.S_IMODE((tmp_path / "ours").stat().st_mode) == 0o600


def test_without_restrict_umask_jobs_keep_the_process_umask(monkeypatch):
    monkeypatch.setattr(private_files, "_original_umask", None)
    assert private_files.original_umask() == -1  # Popen: leave it alone


def test_make_private_dirs_makes_each_missing_level_0700(tmp_path):
    old = os.umask(0)
    try:
        private_files.make_private_dirs(tmp_path / "a" / "b" / "c")
    finally:
        os.umask(old)
    for d in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700


def test_a_state_directory_others_can_write_is_refused(tmp_path):
    (tmp_path / "s").mkdir()
    os.chmod(tmp_path / "s", 0o775)
    with pytest.raises(private_files.UnsafeDirectory, match="mode 0775"):
        private_files.ensure_private_dir(tmp_path / "s", "state directory")
    os.chmod(tmp_path / "s", 0o755)  # readable is fine for the state dir (not the spill)
    private_files.ensure_private_dir(tmp_path / "s", "state directory")
    with pytest.raises(private_files.UnsafeDirectory, match="with mode 0700"):
        private_files.ensure_private_dir(tmp_path / "s", "spill directory", exact=True)


def test_a_file_where_a_directory_should_be_is_refused(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(private_files.CannotMakeDirectory, match="not a directory"):
        private_files.ensure_private_dir(tmp_path / "f", "state directory")


def test_a_state_directory_of_another_user_is_refused(tmp_path):
    (tmp_path / "s").mkdir(mode=0o700)
    os.chown(tmp_path / "s", 65534, 65534)
    with pytest.raises(private_files.UnsafeDirectory, match="owned by nobody with mode 0700"):
        private_files.ensure_private_dir(tmp_path / "s", "state directory")
