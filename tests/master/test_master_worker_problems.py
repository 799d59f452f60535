"""A worker's published problems (``spill: disk full``, issue 11 item 5) in the master:
``/api/v1/workers`` shows them, ``/healthz`` (with a token) names the worker, and the
master logs one line per change, not one per republication."""

from __future__ import annotations

import trio

from cluster.presence import WorkerInfo


async def test_a_worker_whose_spill_is_full_is_shown_and_warned_about_once(master, caplog):
    lease = await master.etcd.grant_lease(30)

    async def publish(*problems: str) -> None:
        info = WorkerInfo("w7", host="box", pid=1, wall_ms=master.ctx.clock(),
                          problems=problems)
        await master.etcd.put(master.keyspace.worker("w7"), info.to_bytes(), lease_id=lease.id)

    async def shown() -> list[str] | None:
        workers = (await master.get("/api/v1/workers")).json["workers"]
        return workers[0]["problems"] if workers else None

    async def until_shown(problems: list[str]) -> None:
        with trio.fail_after(10):
            while await shown() != problems:
                await trio.sleep(0.05)

    await publish()
    await until_shown([])
    assert (await master.get("/healthz")).json["workers"] == {"ok": True}
    for _ in range(3):  # republished every few seconds while it lasts
        await publish("spill: disk full")
    await until_shown(["spill: disk full"])
    answer = await master.get("/healthz")
    assert answer.status == 200 and answer.json["status"] == "degraded"
    assert answer.json["workers"] == {"ok": False, "error": "worker 'w7': spill: disk full"}
    assert (await master.get("/healthz", auth=False)).json == {"status": "ok"}
    await publish()
    await until_shown([])
    assert (await master.get("/healthz")).json["workers"] == {"ok": True}
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("worker 'w7'")]
    assert lines == ["worker 'w7': spill: disk full", "worker 'w7': no longer spill: disk full"]
    await master.etcd.revoke_lease(lease.id)


def test_a_registration_without_problems_reads_as_healthy():
    """An older worker publishes no ``problems``: none are shown."""
    info = WorkerInfo.from_bytes(b'{"id": "old", "host": "h", "pid": 1}')
    assert info.problems == ()
    again = WorkerInfo.from_bytes(WorkerInfo("new", "h", 1, problems=("spill: disk full",))
                                  .to_bytes())
    assert again.problems == ("spill: disk full",)
