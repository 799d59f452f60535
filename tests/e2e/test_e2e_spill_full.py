"""Disk full for the spill directory while the store is down (issue 11, item 5).

Two real workers, six jobs every second. Worker ``full`` spills to a 512 KiB tmpfs
that the test fills; worker ``other`` spills to an ordinary directory. MariaDB (a
private one) is stopped, so ``full``'s records go to memory, then to the spill, which
cannot grow. Then ``full`` stops claiming new fires (``other`` runs them all) and says
so once: one log line, ``scheduler_worker_spill_full`` 1, ``/healthz`` 503
``spill: disk full``, and its registration, which the master shows. The space is freed,
then MariaDB started again: ``full`` claims again, and every run that ran (each job
appends its run id to a file) is in the store: records lost = 0, fires missed and
doubled = 0.

Needs root (``mount -t tmpfs``); skipped, saying so, where mount is refused.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest
import trio

import services
from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace
from cluster.presence import WorkerInfo
from e2e_harness import put_every_second, wait_registered, wall_ms
from proxy_kit import Timeline, records_and_ticks, stop_workers_cleanly

pytestmark = pytest.mark.slow

JOBS = 6
NAMES = [f"sf{j}" for j in range(JOBS)]
TMPFS_SIZE = "512k"
HOLD_S = 6.0  # how long the test watches the full worker claim nothing
FULL_LINE = "claiming no new fire until"


@pytest.fixture
def tiny_spill(tmp_path):
    """A 512 KiB tmpfs (mode 0700, root's: the worker's own), unmounted at the end."""
    path = tmp_path / "tiny-spill"
    path.mkdir(mode=0o700)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700",
                              "tmpfs", str(path)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(directory: Path) -> Path:
    """Write a file until the file system is full (ENOSPC); return it."""
    filler = directory / "filler"
    chunk = b"\0" * 4096
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, chunk)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    return filler


def sample(metrics: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^scheduler_worker_{name}{re.escape(labels)} (\S+)$", metrics, re.M)
    assert match, f"no sample {name}{labels}"
    return float(match[1])


class Scrape:
    """The ``full`` worker's /metrics and /healthz."""

    def __init__(self, port: int) -> None:
        self.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}")

    async def metrics(self) -> str:
        return (await self.client.get("/metrics")).text

    async def won(self) -> float:
        return sample(await self.metrics(), "claims_total", '{result="won"}')

    async def health(self) -> tuple[int, str]:
        answer = await self.client.get("/healthz")
        return answer.status_code, answer.text

    async def until(self, what: str, predicate, timeout_s: float = 30.0) -> None:
        with trio.fail_after(timeout_s):
            while not await predicate():
                await trio.sleep(0.1)


async def test_a_full_spill_stops_claims_keeps_every_record_and_goes_on(
        make_cluster, mariadb_factory, tiny_spill, tmp_path):
    timeline = Timeline()
    server = mariadb_factory()
    db_url = server.url()
    ran = tmp_path / "ran.txt"  # every run appends its id: what ran, whoever recorded it
    cluster = make_cluster(db_url, "--sink-memory-records", "10", "--job-log-batch-size", "5")
    ks = Keyspace(cluster.prefix)
    port = services.free_port()
    scrape = Scrape(port)
    full = cluster.add_worker("full", "--spill-dir", str(tiny_spill), "--metrics-port", str(port))
    cluster.add_worker("other")
    async with open_etcd([cluster.etcd_endpoint]) as etcd:
        await wait_registered(etcd, ks, {"full", "other"})
        window_start = await put_every_second(etcd, ks, NAMES, f'echo "$SCHEDULER_RUN_ID" >> {ran}')
        timeline.note(f"2 workers, {JOBS} jobs every second from {window_start}")
        await trio.sleep((window_start - wall_ms()) / 1000 + 2)
        assert await scrape.won() > 0 and await scrape.health() == (200, "ok\n")

        filler = await trio.to_thread.run_sync(fill, tiny_spill)
        server.stop()
        timeline.note(f"spill tmpfs filled ({filler.stat().st_size} bytes); MariaDB stopped")

        async def is_full() -> bool:
            return (await scrape.health())[0] == 503
        await scrape.until("full", is_full)
        timeline.note("full worker: /healthz 503")
        assert await scrape.health() == (503, "spill: disk full\n")
        metrics = await scrape.metrics()
        assert sample(metrics, "spill_full") == 1
        assert sample(metrics, "store_up") == 0
        won_at_full = sample(metrics, "claims_total", '{result="won"}')
        declined_at_full = sample(metrics, "claims_total", '{result="spill_full"}')
        await trio.sleep(HOLD_S)
        metrics = await scrape.metrics()
        won_held = sample(metrics, "claims_total", '{result="won"}') - won_at_full
        declined = sample(metrics, "claims_total", '{result="spill_full"}') - declined_at_full
        timeline.note(f"held {HOLD_S} s: full worker won {won_held:.0f}, declined "
                      f"{declined:.0f} (spill_full)")
        assert won_held == 0  # claims stop...
        assert declined >= HOLD_S * JOBS / 2  # ...and the fires it would have had are counted
        info = WorkerInfo.from_bytes((await etcd.get(ks.worker("full"))).value)
        assert info.problems == ("spill: disk full",)  # what the master shows
        full_log = full.log_path.read_text()
        assert full_log.count(FULL_LINE) == 1, full_log[-3000:]  # once, not per retry/fire

        filler.unlink()
        timeline.note("space freed")

        async def is_ok() -> bool:
            return await scrape.health() == (200, "ok\n")
        await scrape.until("room again", is_ok, timeout_s=15)
        timeline.note("full worker: /healthz 200 (the spill grew)")
        won_at_room = await scrape.won()

        async def claims_again() -> bool:
            return await scrape.won() > won_at_room
        await scrape.until("claims again", claims_again, timeout_s=10)
        timeline.note("full worker claims again")
        assert sample(await scrape.metrics(), "spill_full") == 0

        server.start()
        timeline.note("MariaDB started")
        await trio.sleep(2)
        window_end = (wall_ms() // 1000 - 1) * 1000

        async def all_stored() -> bool:
            ids = set(ran.read_text().split())
            stored, _, _ = await records_and_ticks(db_url, NAMES, window_start, window_end)
            return ids <= {r.run_id for r in stored}
        await scrape.until("stored", all_stored, timeout_s=60)
        timeline.note("every run that ran is in the store")

        async def no_problem_published() -> bool:  # at the Registrar's next republish
            info = WorkerInfo.from_bytes((await etcd.get(ks.worker("full"))).value)
            return info.problems == ()
        await scrape.until("no problem published", no_problem_published, timeout_s=15)
    stop_workers_cleanly(cluster, timeline)
    full_log = full.log_path.read_text()
    ids = set(ran.read_text().split())
    everything, ticks, check = await records_and_ticks(db_url, NAMES, window_start, window_end)
    lost = ids - {r.run_id for r in everything}
    print(f"\n{timeline}\nran {len(ids)}, stored {len(everything)}, lost {len(lost)}, "
          f"in window {len(ticks)}; missed {check.missed}, doubled {check.repeated}")
    assert lost == set()
    assert check.missed == [] and check.repeated == []
    assert full_log.count(FULL_LINE) == 1 and full_log.count("spill: no longer full") == 1
