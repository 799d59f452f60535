"""Slow etcd (issue #11, item 4): 200 ms more on every request, for 30 s.

Both workers reach etcd only through one ``EtcdProxy`` (the test and its checks go
direct); five jobs fire every second. After a baseline, the proxy holds every request
200 ms for 30 s. Meanwhile a job is added and one deleted: the workers learn both by
their watches, which must survive the slowness. Asserted: 0 doubled, 0 missed; the
added job runs from within a couple of seconds of its creation, the deleted one stops;
the lateness of fires (start − planned time) grows by about the delay and no more,
with the default ``claim_lead_s`` (0.2 s, which the claim no longer fits in: the lead
follows the claims' round trips, ``worker.claim_lead``). A timeline and the lateness
figures are printed.
"""

from __future__ import annotations

import pytest
import trio

from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.store import RunStatus
from e2e_harness import Cluster, put_every_second, put_job, wait_registered, wall_ms
from etcd_proxy import EtcdProxy
from proxy_kit import Timeline, add_worker_via, records_and_ticks, stop_workers_cleanly

pytestmark = pytest.mark.slow

DELAY_S = 0.2
SLOW_FOR_S = 30.0
BASELINE_S = 8.0
TICKS = [f"tick{j}" for j in range(5)]
WATCH_WITHIN_MS = 2500  # a job saved while etcd is slow runs from this soon after


def lateness(records, start_ms: int, end_ms: int) -> list[int]:
    return sorted(r.start_time - r.plan_time for r in records
                  if start_ms <= r.plan_time < end_ms and r.start_time is not None)


def pct(values: list[int], q: float) -> int:
    return values[min(len(values) - 1, int(q * len(values)))]


async def test_slow_etcd_neither_doubles_nor_misses_and_lateness_grows_by_the_delay(
        etcd_endpoint, etcd_prefix, mysql_url, tmp_path):
    timeline = Timeline()
    ks = Keyspace(etcd_prefix)
    cluster = Cluster(etcd_endpoint, etcd_prefix, mysql_url, tmp_path,
                      ["--shutdown-grace-s", "1"])  # the default claim lead: 0.2 s
    try:
        async with open_etcd([etcd_endpoint]) as etcd, EtcdProxy(etcd_endpoint) as proxy:
            for worker_id in ("w0", "w1"):
                add_worker_via(cluster, proxy.endpoint, worker_id)
            await wait_registered(etcd, ks, {"w0", "w1"})
            await put_job(etcd, ks, "doomed", "echo doomed", "* * * * * *",
                          concurrency="allow")
            window_start = await put_every_second(etcd, ks, TICKS, "echo fired")
            timeline.note(f"2 workers through the proxy, {len(TICKS)} jobs every second "
                          f"from {window_start}")
            await trio.sleep((window_start - wall_ms()) / 1000 + BASELINE_S)
            slow_from = (wall_ms() // 1000 + 1) * 1000  # fires planned from here on
            proxy.delay(DELAY_S)
            timeline.note(f"proxy: +{DELAY_S * 1000:.0f} ms on every request")
            await trio.sleep(SLOW_FOR_S / 3)
            added_ms = wall_ms()
            await put_job(etcd, ks, "added", "echo added", "* * * * * *", concurrency="allow")
            await etcd.delete(ks.job("doomed"))
            timeline.note("job 'added' saved, job 'doomed' deleted (direct)")
            await trio.sleep(SLOW_FOR_S * 2 / 3)
            slow_to = (wall_ms() // 1000) * 1000
            proxy.delay(0)
            timeline.note("proxy: no delay")
            await trio.sleep(3)
            window_end = (wall_ms() // 1000 - 1) * 1000
            await trio.sleep(1.5)
        stop_workers_cleanly(cluster, timeline)
    finally:
        cluster.stop_all()
        print(timeline)
    everything, ticks, fires = await records_and_ticks(mysql_url, TICKS, window_start,
                                                       window_end)
    base = lateness(ticks, window_start, slow_from)
    slow = lateness(ticks, slow_from + 1000, slow_to)  # the first slow second settles
    after = lateness(ticks, slow_to + 1000, window_end)
    added = sorted(r.plan_time for r in everything if r.job_name == "added")
    doomed_after = [r for r in everything if r.job_name == "doomed"
                    and r.plan_time > added_ms + WATCH_WITHIN_MS]
    print(f"slow etcd: expected {len(TICKS) * (window_end - window_start) // 1000}, run "
          f"{len(ticks)}, doubled {len(fires.repeated)}, missed {len(fires.missed)}; "
          f"lateness ms baseline p50 {pct(base, .5)} p95 {pct(base, .95)} max {base[-1]}, "
          f"slow p50 {pct(slow, .5)} p95 {pct(slow, .95)} max {slow[-1]}, after p50 "
          f"{pct(after, .5)} max {after[-1]}; 'added' first "
          f"ran {added[0] - added_ms if added else None} ms after its save; 'doomed' "
          f"runs after its deletion: {len(doomed_after)}")
    assert fires.unexpected == set()
    assert fires.repeated == []
    assert fires.missed == []
    assert {r.status for r in ticks} == {RunStatus.SUCCEEDED}
    # No watch lost: the new job runs soon, every second after; the deleted one stops.
    assert added and added[0] - added_ms <= WATCH_WITHIN_MS
    assert set(range(added[0], window_end, 1000)) <= set(added)
    assert doomed_after == []
    # Lateness grows by about the delay and no more: the claim and the write that marks
    # the fire started (DESIGN §6), sent ahead by the claim lead, which grew with what
    # they took (``worker.claim_lead``), are done by the fire's time: p50 +0, p95
    # +71–105 ms measured under load. With a fixed 0.2 s lead it grew by two delays at
    # the median, three at p95 (DESIGN §12, "slow etcd").
    delay_ms = DELAY_S * 1000
    assert pct(slow, .5) - pct(base, .5) <= delay_ms + 50, (base, slow)
    assert pct(slow, .95) - pct(base, .95) <= delay_ms + 100, (base, slow)
    # The worst of ~150 fires: 105–114 ms measured (309–624 before the lead took the
    # backups' round trips too; 318–524 with a fixed 0.5 s lead).
    assert slow[-1] <= 3 * delay_ms, slow
    assert pct(after, .5) <= pct(base, .5) + 50, (base, after)  # and back once it is fast
