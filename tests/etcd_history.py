"""etcd history for the tests that need it gone: compaction through etcd3's own RPC."""

from __future__ import annotations

import etcd3


def compact(endpoint: str, revision: int) -> None:
    """Compact etcd's history up to ``revision`` (blocking: run it in a thread)."""
    host, port = endpoint.rsplit(":", 1)
    client = etcd3.client(host, int(port), timeout=10)
    try:
        client.compact(revision, physical=True)
    finally:
        client.close()
