"""A worker cut off from etcd while it lives (issue #11, item 2).

Three workers share five jobs due every second; one of them, ``cut``, reaches etcd
only through an ``EtcdProxy`` and alone runs a long job (its selector), which ignores
SIGTERM (only the SIGKILL that follows ``kill_grace_s``, 5 s, ends it). The proxy
stops forwarding (``pause``: silence, no error). Two cases:

- released *after* the lease expired: ``cut`` must kill the long job before etcd can
  have let its lease go (the process is gone before its ``workers/`` key is), record
  it ``lost`` as fenced, claim nothing more; the other two run every fire meanwhile;
  after the release ``cut`` rejoins on a new lease and runs fires again;
- released *before* it could expire (a cut shorter than the TTL less a renewal
  interval and the fence lead; a TTL of 9 s to make it 4 s): nothing is fenced, the long job lives on, what the proxy held is let
  through late, and nothing is won twice.

Both: every fire in the window recorded once (0 missed, 0 doubled), no record lost.
The store is reachable throughout (through a proxy that keeps flowing), so records go
straight to it. A third case pauses the store's proxy with etcd's: for a cut of ~6 s
the batch in flight to the store just hangs (no write fails), but the fence spills what
``cut`` holds at once, and the fenced record as it comes: it is read in ``cut``'s spill
file while the cut lasts, and reaches the store after the release (0 records lost).
A timeline is printed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.store import RunStatus
from e2e_harness import Cluster, put_every_second, put_job, wait_registered, wall_ms
from etcd_proxy import EtcdProxy
from proxy_kit import (LeaseWatch, Timeline, add_worker_via, db_target, db_url_via,
                       records_and_ticks, stop_workers_cleanly)
from worker.registrar.actor import FENCE_LEAD_S

pytestmark = pytest.mark.slow

TTL_S = {True: 3, False: 9}  # --session-ttl-s, by case (released after expiry?)
TICKS = [f"tick{j}" for j in range(5)]
CUT = "cut"
SETTLE_S = 3.0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def wait_pid(pidfile: Path, timeout_s: float) -> int:
    with trio.fail_after(timeout_s):
        while not (pidfile.exists() and pidfile.read_text().strip()):
            await trio.sleep(0.05)
    return int(pidfile.read_text().split()[0])


async def watch_pid(pid: int, out: list[float]) -> None:
    while pid_alive(pid):
        await trio.sleep(0.01)
    out.append(trio.current_time())


def spilled_lines(path: Path) -> list[dict]:
    """The run records in a spill file now (a torn last line, mid-append, is skipped)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.split("\n")[:-1]]


async def wait_fenced_in_spill(path: Path, job: str, timeout_s: float) -> list[dict]:
    """The spill file's lines, once one holds ``job``'s fenced record."""
    with trio.fail_after(timeout_s):
        while True:
            lines = spilled_lines(path)
            if any(line["jobName"] == job and "fenced" in line["err"] for line in lines):
                return lines
            await trio.sleep(0.05)


def at_second(ms: int) -> str:
    """A 6-field cron expression due once, at the wall second ``ms`` falls in (UTC)."""
    import time
    t = time.gmtime(ms // 1000)
    return f"{t.tm_sec} {t.tm_min} {t.tm_hour} {t.tm_mday} {t.tm_mon} *"


async def run_case(release_after_expiry: bool, etcd_endpoint: str, etcd_prefix: str,
                   mysql_url: str, tmp_path: Path, store_cut: bool = False) -> None:
    timeline = Timeline()
    ttl_s = TTL_S[release_after_expiry]
    ks = Keyspace(etcd_prefix)
    cluster = Cluster(etcd_endpoint, etcd_prefix, mysql_url, tmp_path,
                      ["--session-ttl-s", str(ttl_s), "--shutdown-grace-s", "1"])
    pidfile = tmp_path / "long.pid"
    long_killed: list[float] = []
    try:
        async with open_etcd([etcd_endpoint]) as etcd, EtcdProxy(etcd_endpoint) as proxy, \
                EtcdProxy(db_target(mysql_url)) as db_proxy, trio.open_nursery() as nursery:
            add_worker_via(cluster, proxy.endpoint, CUT, "--labels", "side=cut",
                           db_url=db_url_via(mysql_url, db_proxy.endpoint))
            for worker_id in ("w1", "w2"):
                cluster.add_worker(worker_id)
            await wait_registered(etcd, ks, {CUT, "w1", "w2"})
            watch = LeaseWatch(etcd, ks, CUT)
            nursery.start_soon(watch.run)
            window_start = await put_every_second(etcd, ks, TICKS, "echo fired")
            await put_job(etcd, ks, "long", f"trap '' TERM; echo $$ > {pidfile}; sleep 300",
                          at_second(window_start + 1000), selector={"side": "cut"})
            timeline.note(f"3 workers ({CUT} through the proxy), ttl {ttl_s} s, "
                          f"{len(TICKS)} jobs every second from {window_start}")
            pid = await wait_pid(pidfile, 10)
            timeline.note(f"the long job runs on {CUT}: pid {pid}")
            nursery.start_soon(watch_pid, pid, long_killed)
            await trio.sleep(SETTLE_S)

            proxy.pause()
            if store_cut:
                db_proxy.pause()
            cut_ms = wall_ms()
            timeline.note(f"proxy paused: cut cannot reach etcd{' nor the store' * store_cut}")
            cut_t = trio.current_time()
            leases_before = len(watch.leases)
            if release_after_expiry:
                expired_t = await watch.wait_gone(ttl_s + 5)
                timeline.note(f"{CUT}'s key gone from etcd (lease expired)", expired_t)
                await trio.sleep(SETTLE_S)  # the others run every fire meanwhile
                if store_cut:  # still cut off from both: read its spill file
                    spilled = await wait_fenced_in_spill(
                        cluster.base_dir / "spill" / f"{CUT}.jsonl", "long", 1)
                    timeline.note(f"{CUT}'s spill file holds {len(spilled)} records, "
                                  "the long job's fenced one among them")
            else:
                # The last renewal was sent at most ttl/3 before the cut: no fence
                # can come before ttl - ttl/3 - FENCE_LEAD_S after it. The 1 s kept
                # back covers the worker's lag in renewing and this loop's oversleep.
                await trio.sleep(ttl_s - ttl_s / 3 - FENCE_LEAD_S - 1.0)
            proxy.resume()
            db_proxy.resume()
            released_t = trio.current_time()
            timeline.note(f"proxy released after {released_t - cut_t:.2f} s")
            if release_after_expiry:
                rejoined_t = await watch.wait_new_lease(leases_before, 15)
                rejoined_ms = wall_ms()
                timeline.note(f"{CUT} rejoined on lease {watch.leases[-1][1]:#x}, "
                              f"{rejoined_t - released_t:.2f} s after the release", rejoined_t)
            await trio.sleep(2 * SETTLE_S if release_after_expiry else SETTLE_S)
            if store_cut:  # replayed: none of what waited is in the spill file any more
                left = spilled_lines(cluster.base_dir / "spill" / f"{CUT}.jsonl")
                assert {line["runId"] for line in spilled} & {
                    line["runId"] for line in left} == set(), left
            window_end = (wall_ms() // 1000 - 1) * 1000
            await trio.sleep(1.5)  # the window's last fires end and are recorded
            nursery.cancel_scope.cancel()
            leases_seen = [lease for _, lease in watch.leases]
        if long_killed:
            timeline.note(f"the long job's process gone ({long_killed[0] - cut_t:.2f} s "
                          "after the cut)", long_killed[0])
        stop_workers_cleanly(cluster, timeline)
    finally:
        cluster.stop_all()
        print(timeline)
    everything, ticks, fires = await records_and_ticks(mysql_url, TICKS, window_start,
                                                       window_end)
    longs = [r for r in everything if r.job_name == "long"]
    expected = len(TICKS) * (window_end - window_start) // 1000
    print(f"case released {'after' if release_after_expiry else 'before'} expiry: "
          f"expected {expected}, run {len(ticks)}, doubled {len(fires.repeated)}, "
          f"missed {len(fires.missed)}, long job records {[(r.status, r.err) for r in longs]}, "
          f"statuses {sorted({r.status for r in ticks})}, by {CUT}: "
          f"{sum(r.worker == CUT for r in ticks)}; leases of {CUT}: {len(leases_seen)}")
    assert fires.unexpected == set()
    assert fires.repeated == []
    assert fires.missed == []
    assert {r.status for r in ticks} == {RunStatus.SUCCEEDED}
    assert len(longs) <= 1
    if release_after_expiry:
        # It claimed nothing while cut off (a fire claimed just before the cut may
        # still start), and claims again once back.
        assert [r for r in ticks if r.worker == CUT
                and cut_ms + 1000 <= r.plan_time < rejoined_ms] == []
        assert any(r.worker == CUT and r.plan_time > rejoined_ms for r in ticks)
        assert long_killed and long_killed[0] < expired_t, (long_killed, expired_t)
        assert [r.status for r in longs] == [RunStatus.LOST]
        # One row per run, the worker's own record ("... was fenced", with its start),
        # whether the survivors' ("... lost its session ...", no start: written when
        # its lease expired) landed before or after it.
        assert "was fenced" in longs[0].err and longs[0].start_time is not None, longs[0]
        if store_cut:
            # What waited in its spill file reached the store after the release.
            stored = {r.run_id for r in everything}
            assert {line["runId"] for line in spilled} <= stored, (spilled, stored)
            assert longs[0].run_id in {line["runId"] for line in spilled}
    else:
        # Never fenced: the long job ran on until the workers' graceful stop killed it,
        # and the worker kept its one lease. Its record: the worker's own ("killed:
        # worker shutting down"), or the survivors' "lost" when they saw its lease
        # revoked at its stop before its record was durable (the same race as above).
        assert not long_killed
        assert len(longs) == 1 and "fenced" not in longs[0].err, longs
        assert (longs[0].status, "shutting down" in longs[0].err) in {
            (RunStatus.KILLED, True), (RunStatus.LOST, False)}, longs
        assert len(leases_seen) == 1, leases_seen


async def test_cut_off_worker_released_after_its_lease_expired(
        etcd_endpoint, etcd_prefix, mysql_url, tmp_path):
    await run_case(True, etcd_endpoint, etcd_prefix, mysql_url, tmp_path)


async def test_cut_off_from_etcd_and_the_store_its_records_wait_in_its_spill(
        etcd_endpoint, etcd_prefix, mysql_url, tmp_path):
    """The store behind a proxy too, paused and released with etcd's: the fenced record
    (written while neither could be reached) is in the spill file while the cut lasts,
    and it and every other reach the store after."""
    await run_case(True, etcd_endpoint, etcd_prefix, mysql_url, tmp_path, store_cut=True)


async def test_cut_off_worker_released_before_its_lease_could_expire(
        etcd_endpoint, etcd_prefix, mysql_url, tmp_path):
    await run_case(False, etcd_endpoint, etcd_prefix, mysql_url, tmp_path)
