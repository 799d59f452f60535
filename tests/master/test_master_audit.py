"""The audit trail: an entry in the change's own etcd transaction, readable at once,
moved to the run store by the AuditMover, and never lost while the store is down."""

from __future__ import annotations

import json

import trio

from cluster.store import AuditAction, AuditEntry, open_store
from cluster.tokens import Role
from master.audit import AuditQuery, Author, merge_page, new_entry
from master.auth import Identity

from master_testkit import make_config, running_master

SPEC = {"command": "echo audited", "cronExpr": "@every 1h"}
MOVE_TIMEOUT_S = 20  # the mover passes every second, backing off while the store is down


async def pending_keys(master) -> list[str]:
    return [kv.key for kv in (await master.etcd.get_prefix(master.keyspace.audit_prefix)).kvs]


async def wait_moved(master) -> None:
    with trio.fail_after(MOVE_TIMEOUT_S):
        while await pending_keys(master):
            await trio.sleep(0.1)


def metric(master, name: str) -> float:
    for line in master.ctx.metrics.render().decode().splitlines():
        if line.startswith(f"scheduler_master_{name} "):
            return float(line.split()[-1])
    raise AssertionError(f"no metric {name}")


async def test_every_change_is_audited_then_moved_to_the_store(master):
    assert (await master.put("/api/v1/jobs/a1", json=SPEC)).status == 201
    assert (await master.post("/api/v1/jobs/a1/pause")).status == 200
    assert (await master.post("/api/v1/jobs/a1/pause")).status == 200  # no change: no entry
    assert (await master.post("/api/v1/jobs/a1/resume")).status == 200
    run = (await master.post("/api/v1/jobs/a1/run")).json["runId"]
    assert (await master.post("/api/v1/jobs/a1/kill", json={"runId": run})).status == 202
    assert (await master.delete("/api/v1/jobs/a1")).status == 200
    assert (await master.post("/api/v1/jobs/a1/run")).status == 404  # refused: no entry
    page = (await master.get("/api/v1/audit")).json  # at once, from etcd or the store
    actions = [e["action"] for e in page["entries"]]
    assert actions == ["delete", "kill", "run", "resume", "pause", "put"]
    assert {e["token"] for e in page["entries"]} == {"admin"}
    assert {e["via"] for e in page["entries"]} == {"api"}
    put = page["entries"][-1]
    assert put["change"]["created"] is True and put["change"]["spec"]["command"] == "echo audited"
    assert page["entries"][1]["change"] == {"runId": run}
    assert page["entries"][0]["change"]["spec"]["name"] == "a1"
    times = [e["time"] for e in page["entries"]]
    assert times == sorted(times, reverse=True)

    await wait_moved(master)
    async with open_store(master.config.db_url) as store:
        stored = await store.query_audit(limit=100)
    assert [e.to_json() for e in stored] == page["entries"]
    again = (await master.get("/api/v1/audit")).json
    assert again == {**page, "partial": False}
    assert metric(master, "audit_entries_written_total") == 6
    assert metric(master, "audit_entries_moved_total") == 6
    assert metric(master, "audit_entries_pending") == 0


async def test_seed_changes_are_audited_with_their_door(master):
    job = json.dumps({"name": "s1", **SPEC})
    assert (await master.post("/job/save", form={"job": job})).status == 200
    assert (await master.post("/job/kill", form={"name": "s1"})).status == 200
    assert (await master.post("/job/delete", form={"name": "s1"})).status == 200
    entries = (await master.get("/api/v1/audit?job=s1")).json["entries"]
    assert [(e["action"], e["via"]) for e in entries] == [
        ("delete", "seed"), ("kill", "seed"), ("put", "seed")]


async def test_filters_and_cursor_page_newest_first(master):
    for i in range(5):
        await master.put(f"/api/v1/jobs/p{i % 2}", json={**SPEC, "command": f"echo {i}"})
    seen = []
    cursor = None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await master.get("/api/v1/audit", query_string=query)).json
        seen += [e["change"]["spec"]["command"] for e in page["entries"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == [f"echo {i}" for i in reversed(range(5))]
    only = (await master.get("/api/v1/audit?job=p1")).json["entries"]
    assert [e["change"]["spec"]["command"] for e in only] == ["echo 3", "echo 1"]
    assert (await master.get("/api/v1/audit?token=admin")).json["entries"]
    assert (await master.get("/api/v1/audit?token=nobody")).json["entries"] == []
    for bad in ("cursor=zzz", "limit=0", "job=a%2Fb", "token=a%20b"):
        answer = await master.get(f"/api/v1/audit?{bad}")
        assert answer.status == 400, bad
        assert answer.error["field"] == bad.split("=")[0]


async def test_with_the_store_down_changes_succeed_and_their_entries_wait_in_etcd(
        tmp_path, etcd_endpoint, etcd_prefix):
    closed = f"mysql://u:p@127.0.0.1:{free_port()}/nowhere"
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix, db_url=closed,
                         db_timeout_s=1.0)
    async with running_master(config) as master:
        assert (await master.put("/api/v1/jobs/down", json=SPEC)).status == 201
        assert (await master.post("/api/v1/jobs/down/run")).status == 202
        page = await master.get("/api/v1/audit")
        assert page.status == 200
        assert page.json["partial"] is True
        assert [e["action"] for e in page.json["entries"]] == ["run", "put"]
        await trio.sleep(2.5)  # the mover tried, and failed
        assert len(await pending_keys(master)) == 2
        assert metric(master, "audit_entries_pending") == 2
        assert metric(master, "audit_entries_moved_total") == 0
        assert (await master.get("/api/v1/runs")).status == 503  # the store is down indeed
        await master.etcd.delete_prefix(config.prefix)


async def test_entries_written_while_the_store_was_down_move_once_it_is_back(
        tmp_path, etcd_endpoint, etcd_prefix):
    blocker = tmp_path / "store"
    blocker.write_text("a file where the store's directory should be")
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix,
                         db_url=f"sqlite:///{blocker}/runs.db")
    async with running_master(config) as master:
        assert (await master.put("/api/v1/jobs/back", json=SPEC)).status == 201
        assert (await master.get("/api/v1/audit")).json["partial"] is True
        await trio.sleep(1.5)
        assert len(await pending_keys(master)) == 1
        blocker.unlink()  # the store can be created now
        await wait_moved(master)
        page = (await master.get("/api/v1/audit")).json
        assert page["partial"] is False
        assert [(e["action"], e["job"]) for e in page["entries"]] == [("put", "back")]
        await master.etcd.delete_prefix(config.prefix)


def test_merge_shows_an_entry_in_both_places_once_and_pages_across_them():
    author = Author(Identity("ops", Role.OPERATE), "api")
    made = [new_entry(author, AuditAction.RUN, "j", {"runId": str(i)}, 1_000 + i)
            for i in range(5)]
    stored, pending = made[:3], made[2:]  # entry 2 was moved but not yet deleted
    page = merge_page(pending, stored, AuditQuery(limit=3), partial=False)
    assert page.entries == made[:1:-1] and page.next_before == made[2].entry_id
    rest = merge_page(pending, stored[:2], AuditQuery(before_id=page.next_before, limit=3),
                      partial=False)
    assert rest.entries == made[1::-1] and rest.next_before is None
    assert all(isinstance(e, AuditEntry) for e in rest.entries)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_a_value_that_is_no_entry_stays_in_etcd_and_blocks_nothing(master):
    junk = master.keyspace.audit("0000000000000001-00000000000000ff")
    await master.etcd.put(junk, b"not an audit entry")
    assert (await master.put("/api/v1/jobs/j1", json=SPEC)).status == 201
    with trio.fail_after(MOVE_TIMEOUT_S):
        while await pending_keys(master) != [junk]:
            await trio.sleep(0.1)
    entries = (await master.get("/api/v1/audit")).json["entries"]
    assert [(e["action"], e["job"]) for e in entries] == [("put", "j1")]
