"""The audit log in the RunStore, against both backends: entries round-trip newest
first and page; a store that only writes runs never creates the audit table."""

from __future__ import annotations

import sqlite3

from cluster.store import open_store

from store_testkit import T0, run


def audit_entry(i: int, job: str = "job-a", token: str = "alice") -> "AuditEntry":
    from cluster.store import AuditAction, AuditEntry

    return AuditEntry(f"{T0 + i:016d}-{i:016x}", T0 + i, token, "admin", AuditAction.PUT,
                      job, "api", {"spec": {"command": f"echo {i} ünï"}, "created": True})


async def test_audit_entries_round_trip_newest_first_and_page(store):
    entries = [audit_entry(i, job=f"job-{i % 2}", token="alice" if i < 4 else "bob")
               for i in range(6)]
    await store.write_audit(entries[:4])
    await store.write_audit(entries[2:])  # a move retried: stored once each
    newest = await store.query_audit(limit=100)
    assert newest == entries[::-1]
    first = await store.query_audit(limit=2)
    assert first == [entries[5], entries[4]]
    after = await store.query_audit(before_id=first[-1].entry_id, limit=100)
    assert after == entries[3::-1]
    assert await store.query_audit(job_name="job-1", limit=100) == [entries[5], entries[3],
                                                                     entries[1]]
    assert await store.query_audit(token="bob", job_name="job-0", limit=100) == [entries[4]]
    assert await store.query_audit(token="carol", limit=100) == []


async def test_the_run_table_alone_never_creates_the_audit_table(tmp_path):
    """Workers only write runs: their store never creates audit_log."""
    async with open_store(f"sqlite:///{tmp_path}/runs.db") as store:
        await store.write_batch([run(1)])
    with sqlite3.connect(f"{tmp_path}/runs.db") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master "
                                             "WHERE type = 'table'")}
    assert "job_log" in tables and "audit_log" not in tables
