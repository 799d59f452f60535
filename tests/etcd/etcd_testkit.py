"""Helpers for the etcd adapter's tests: raw RPCs, server-side counters, and a
writer that writes each key exactly once."""

from __future__ import annotations

import threading
import urllib.request

from etcd_history import compact
import trio

from cluster.etcd import Compare, Etcd, EtcdUnavailable, Put


def etcd_watchers(endpoint: str) -> int:
    """How many watchers the etcd server holds now (its own gauge)."""
    with urllib.request.urlopen(f"http://{endpoint}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("etcd_debugging_mvcc_watcher_total "):
                return int(float(line.split()[1]))
    raise AssertionError("etcd exposes no etcd_debugging_mvcc_watcher_total")


async def write_once(etcd: Etcd, key: str, value: str = "x") -> None:
    """Create ``key`` exactly once, retrying while etcd is down.

    The ``create_revision == 0`` compare makes a retry after a lost answer harmless:
    if the first attempt was applied, the retry fails its compare and writes nothing.
    """
    while True:
        try:
            await etcd.txn([Compare.create_revision(key, "==", 0)], [Put(key, value)])
            return
        except EtcdUnavailable:
            await trio.sleep(0.05)


async def wait_until(predicate, timeout_s: float = 10.0, what: str = "condition") -> None:
    """Poll a wall-clock condition (external servers, threads) with a generous bound."""
    with trio.move_on_after(timeout_s):
        while not predicate():
            await trio.sleep(0.05)
        return
    raise AssertionError(f"{what} not reached within {timeout_s} s")


def thread_count() -> int:
    return threading.active_count()

