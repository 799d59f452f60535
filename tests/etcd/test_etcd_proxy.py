"""The test proxy itself (``scripts/etcd_proxy.py``): it forwards, holds, and delays.

The partition and slow-etcd tests rely on it; if pausing let bytes through, or the
delay did not delay, they would pass without testing anything.
"""

from __future__ import annotations

import trio

from cluster.etcd import EtcdError, open_etcd
from etcd_proxy import EtcdProxy


async def test_the_proxy_forwards_holds_without_closing_then_delays(
        etcd, etcd_endpoint, etcd_prefix):
    key = f"{etcd_prefix}proxied"
    async with EtcdProxy(etcd_endpoint) as proxy, \
            open_etcd([proxy.endpoint], timeout_s=1.0) as client:
        await client.put(key, "a")
        assert (await etcd.get(key)).value == b"a"

        proxy.pause()
        started = trio.current_time()
        try:
            # Another key: the held write may still land after resume, and etcd runs
            # the streams of one connection concurrently, so it could land after "c".
            await client.put(f"{key}-held", "b")
            raised = False
        except EtcdError:
            raised = True
        assert raised and trio.current_time() - started >= 0.9  # silence, no refusal
        assert proxy.connections >= 1
        assert await etcd.get(f"{key}-held") is None  # held: not one byte through

        proxy.resume()
        with trio.fail_after(5):
            await client.put(key, "c")  # the same connection, flowing again
        assert (await etcd.get(key)).value == b"c"

        proxy.delay(0.2)
        started = trio.current_time()
        await client.put(key, "d")
        took_s = trio.current_time() - started
        assert 0.2 <= took_s < 0.6, took_s
