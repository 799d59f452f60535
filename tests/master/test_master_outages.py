"""Dependencies going away and coming back: 503s that name the culprit, then recovery
without a restart of the master. Private servers: these tests stop them."""

from __future__ import annotations

import services  # scripts/: on sys.path through tests/conftest.py
import trio

from cluster.store import open_store

from master_testkit import make_config, record, running_master

SPEC = {"command": "true", "cronExpr": "* * * * *"}
RECOVERY_S = 40.0


async def eventually(master, path: str, status: int, timeout_s: float = RECOVERY_S):
    with trio.fail_after(timeout_s):
        while True:
            answer = await master.get(path)
            if answer.status == status:
                return answer
            await trio.sleep(0.2)


def assert_unavailable(answer, names: str) -> None:
    assert answer.status == 503, (answer.status, answer.body)
    assert answer.error["code"] == "unavailable"
    assert names in answer.error["message"], answer.error["message"]


async def test_etcd_down_gives_503_and_the_api_recovers_by_itself(tmp_path, etcd_factory):
    server = etcd_factory()
    config = make_config(tmp_path, server.endpoint, "/cron/")
    async with running_master(config) as master:
        assert (await master.put("/api/v1/jobs/kept", json=SPEC)).status == 201
        assert (await master.get("/api/v1/workers")).status == 200
        await trio.to_thread.run_sync(server.stop)

        assert_unavailable(await master.get("/api/v1/jobs"), "etcd")
        assert_unavailable(await master.get("/api/v1/jobs/kept"), "etcd")
        assert_unavailable(await master.put("/api/v1/jobs/new", json=SPEC), "etcd")
        assert_unavailable(await master.post("/api/v1/jobs/kept/run"), "etcd")
        assert_unavailable(await eventually(master, "/api/v1/workers", 503), "etcd")
        seed = await master.get("/job/list")
        assert seed.status == 503 and seed.json["errno"] == 503 and "etcd" in seed.json["msg"]
        assert (await master.get("/healthz", auth=False)).json == {"status": "unavailable"}
        health = await master.get("/healthz")
        assert health.status == 503 and health.json["status"] == "degraded"
        assert health.json["etcd"]["ok"] is False and "etcd" in health.json["etcd"]["error"]
        assert health.json["store"] == {"ok": True}
        assert (await master.get("/api/v1/runs")).status == 200  # the store is fine
        assert master.ctx.metrics.value("etcd_errors_total") > 0

        await trio.to_thread.run_sync(server.start)
        listed = await eventually(master, "/api/v1/jobs", 200)
        assert [j["name"] for j in listed.json["jobs"]] == ["kept"]
        assert (await eventually(master, "/healthz", 200)).json["status"] == "ok"
        await eventually(master, "/api/v1/workers", 200)
        assert (await master.put("/api/v1/jobs/new", json=SPEC)).status == 201


async def test_master_starts_and_serves_jobs_with_the_store_down(tmp_path, etcd_endpoint,
                                                                 etcd_prefix):
    port = services.free_port()
    dead = f"mysql://nobody:pw@127.0.0.1:{port}/runs"
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix, db_url=dead)
    async with running_master(config) as master:
        assert (await master.put("/api/v1/jobs/j", json=SPEC)).status == 201
        listed = await master.get("/api/v1/jobs")  # listed, without their last runs
        assert listed.status == 200 and [j["lastRun"] for j in listed.json["jobs"]] == [None]
        assert listed.json["lastRunsError"].startswith("the run store is unreachable")
        for path in ("/api/v1/runs", "/api/v1/jobs/j/runs", "/api/v1/runs/abc"):
            assert_unavailable(await master.get(path), "run store")
        log = await master.get("/job/log?name=j")
        assert log.status == 503 and "run store" in log.json["msg"]
        public = await master.get("/healthz", auth=False)
        assert public.status == 503 and public.json == {"status": "unavailable"}
        for leak in ("nobody", "pw", "127.0.0.1", str(port), "runs", "mysql"):
            assert leak not in public.body.decode(), leak  # nothing of the store's URL
        health = await master.get("/healthz")  # a valid token: the detail
        assert health.status == 503 and health.json["etcd"] == {"ok": True}
        assert health.json["store"]["ok"] is False
        assert "nobody:pw" not in health.body.decode()  # no password in any answer
        await master.etcd.delete_prefix(etcd_prefix)


async def test_store_outage_and_recovery(tmp_path, etcd_endpoint, etcd_prefix,
                                         mariadb_factory):
    server = mariadb_factory()
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix, db_url=server.url())
    async with running_master(config) as master:
        async with open_store(server.url()) as store:
            await store.write_batch([record("r1", "j")])
        assert (await master.get("/api/v1/runs/r1")).status == 200
        await trio.to_thread.run_sync(server.stop)
        assert_unavailable(await master.get("/api/v1/runs/r1"), "run store")
        assert (await master.put("/api/v1/jobs/j", json=SPEC)).status == 201
        await trio.to_thread.run_sync(server.start)
        assert (await eventually(master, "/api/v1/runs/r1", 200)).json["run"]["runId"] == "r1"
        await eventually(master, "/healthz", 200)
        await master.etcd.delete_prefix(etcd_prefix)
