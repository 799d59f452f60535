"""Latency and throughput of the adapter's hot path (not collected by pytest).

    .venv/bin/python tests/etcd/bench_etcd.py [--endpoint host:port] [--threads 16]

Without ``--endpoint`` it starts a private etcd (scripts/services.py) so that the
load does not disturb tests running against the shared one. Measures the median
latency of one put and one claim transaction (sequential), then how many claim
transactions per second ``--tasks`` concurrent tasks sustain through a limiter of
``--threads`` threads.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

from cluster.etcd import Compare, Put, open_etcd

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import services  # noqa: E402


async def latency_ms(call, n: int) -> float:
    samples = []
    for i in range(n):
        started = time.perf_counter()
        await call(i)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def throughput(etcd, tasks: int, duration_s: float) -> float:
    done = 0

    async def claimer(worker: int) -> None:
        nonlocal done
        i = 0
        while True:
            key = f"/bench/lock/w{worker}/{i}"
            await etcd.txn([Compare.create_revision(key, "==", 0)],
                           [Put(key, "me"), Put(f"/bench/running/w{worker}/{i}", "r")])
            done += 1
            i += 1

    async with trio.open_nursery() as nursery:
        for worker in range(tasks):
            nursery.start_soon(claimer, worker)
        await trio.sleep(duration_s)
        nursery.cancel_scope.cancel()
    return done / duration_s


async def bench(endpoint: str, threads: int, tasks: int, n: int, duration_s: float) -> None:
    async with open_etcd([endpoint], max_threads=threads) as etcd:
        await etcd.delete_prefix("/bench/")
        put = await latency_ms(lambda i: etcd.put(f"/bench/put/{i}", "v"), n)
        get = await latency_ms(lambda i: etcd.get(f"/bench/put/{i}"), n)
        txn = await latency_ms(lambda i: etcd.txn(
            [Compare.create_revision(f"/bench/seq/{i}", "==", 0)],
            [Put(f"/bench/seq/{i}", "me")]), n)
        print(f"median latency over {n}: put {put:.2f} ms, get {get:.2f} ms, txn {txn:.2f} ms")
        rate = await throughput(etcd, tasks, duration_s)
        print(f"claim txns/s with {tasks} tasks, {threads} threads: {rate:.0f}")
        await etcd.delete_prefix("/bench/")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--duration-s", type=float, default=5.0)
    args = parser.parse_args()
    run = lambda endpoint: trio.run(  # noqa: E731
        bench, endpoint, args.threads, args.tasks, args.n, args.duration_s)
    if args.endpoint:
        run(args.endpoint)
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = services.EtcdServer(Path(tmp)).start()
        try:
            run(server.endpoint)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
