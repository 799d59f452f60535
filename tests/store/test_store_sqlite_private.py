"""The SQLite run store holds job output: its file, -wal and -shm are 0600 from their
creation, and a directory it makes is 0700, whatever the process umask (issue #10)."""

from __future__ import annotations

import os
import stat

from cluster.store import RunRecord, open_store


def record() -> RunRecord:
    return RunRecord(run_id="r1", job_name="j", worker="w1", command="echo secret",
                     output="secret output\n", err="", exit_code=0, status="succeeded",
                     trigger="schedule", attempt=1, plan_time=1, schedule_time=1,
                     start_time=1, end_time=2)


async def test_runs_db_and_its_wal_are_0600_and_its_new_directory_0700(tmp_path):
    old = os.umask(0o022)  # a common umask, not ours: the modes must come from creation
    try:
        async with open_store(f"sqlite:///{tmp_path}/new/dir/runs.db") as store:
            await store.write_batch([record()])
            files = {p.name: stat.S_IMODE(p.stat().st_mode)
                     for p in (tmp_path / "new" / "dir").iterdir()}
    finally:
        os.umask(old)
    assert files["runs.db"] == 0o600
    assert files["runs.db-wal"] == 0o600 and files["runs.db-shm"] == 0o600
    for d in (tmp_path / "new", tmp_path / "new" / "dir"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700


async def test_an_existing_database_file_is_used_as_it_is(tmp_path):
    (tmp_path / "runs.db").touch(mode=0o640)
    os.chmod(tmp_path / "runs.db", 0o640)
    async with open_store(f"sqlite:///{tmp_path}/runs.db") as store:
        await store.write_batch([record()])
        assert [r.run_id for r in (await store.query(limit=10)).records] == ["r1"]
    assert stat.S_IMODE((tmp_path / "runs.db").stat().st_mode) == 0o640  # not chmod-ed
