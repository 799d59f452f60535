"""fold_prefix against a real etcd: a large range read in pages, one consistent state.

Why pages: a whole-range read of 100k job specs costs ~1 KB a key at once, which the
allocator keeps (DESIGN §6b "Memory"); a paged read holds one page."""

from __future__ import annotations

from collections.abc import Sequence

import etcd3
from etcd_history import compact

from cluster.etcd import KeyValue, Put, RangeCompacted, open_etcd
from cluster.mirror import fold_prefix


class Pages:
    """Keeps each page's keys and values; ``between`` runs (once) after the first page."""

    between = None

    def __init__(self) -> None:
        self.pages: list[dict[str, str]] = []

    def add(self, kvs: Sequence[KeyValue]) -> None:
        self.pages.append({kv.key: kv.value.decode() for kv in kvs})


async def put_many(etcd, prefix: str, count: int, value: str = "v") -> None:
    await etcd.txn([], [Put(f"{prefix}{i:03d}", value) for i in range(count)])


async def test_every_key_once_in_order_in_pages_of_the_size_asked(etcd, etcd_prefix):
    await put_many(etcd, etcd_prefix, 25)
    await etcd.put(etcd_prefix[:-1] + "0", "a key beside the prefix, not in it")
    fold, revision = await fold_prefix(etcd, etcd_prefix, Pages, page_size=10)
    assert [len(page) for page in fold.pages] == [10, 10, 5]
    keys = [key for page in fold.pages for key in page]
    assert keys == [f"{etcd_prefix}{i:03d}" for i in range(25)]
    assert revision == (await etcd.get_prefix(etcd_prefix)).revision


async def test_an_exact_multiple_and_an_empty_range(etcd, etcd_prefix):
    await put_many(etcd, etcd_prefix + "x/", 20)
    fold, _ = await fold_prefix(etcd, etcd_prefix + "x/", Pages, page_size=10)
    assert sum(len(page) for page in fold.pages) == 20
    empty, revision = await fold_prefix(etcd, etcd_prefix + "none/", Pages, page_size=10)
    assert (empty.pages, revision > 0) == ([{}], True)


async def test_pages_are_of_the_first_pages_revision_whatever_changes_meanwhile(
        etcd, etcd_endpoint, etcd_prefix):
    await put_many(etcd, etcd_prefix, 20, "old")

    class Racing(Pages):
        def add(self, kvs: Sequence[KeyValue]) -> None:
            super().add(kvs)
            if len(self.pages) == 1:  # between the first page and the second
                _put_sync(etcd_endpoint, etcd_prefix + "015", "new")
                _put_sync(etcd_endpoint, etcd_prefix + "025", "new")

    fold, revision = await fold_prefix(etcd, etcd_prefix, Racing, page_size=10)
    state = {k: v for page in fold.pages for k, v in page.items()}
    assert (len(state), set(state.values())) == (20, {"old"})
    assert (await etcd.get(etcd_prefix + "015")).value == b"new"
    assert revision < (await etcd.get(etcd_prefix + "025")).mod_revision


async def test_a_revision_compacted_between_pages_starts_the_read_over(etcd_factory):
    server = etcd_factory()  # private: compaction is server-wide
    async with open_etcd([server.endpoint]) as etcd:
        await put_many(etcd, "/f/", 20)
        folds: list[Pages] = []

        class Compacting(Pages):
            def __init__(self) -> None:
                super().__init__()
                folds.append(self)

            def add(self, kvs: Sequence[KeyValue]) -> None:
                super().add(kvs)
                if len(folds) == 1 and len(self.pages) == 1:  # the first read, once
                    latest = _put_sync(server.endpoint, "/f/005", "after")
                    compact(server.endpoint, latest)

        fold, revision = await fold_prefix(etcd, "/f/", Compacting, page_size=10)
        assert len(folds) == 2 and fold is folds[1]
        state = {k: v for page in fold.pages for k, v in page.items()}
        assert (len(state), state["/f/005"]) == (20, "after")
        try:
            await etcd.get_prefix_page("/f/", limit=1, revision=revision - 1)
        except RangeCompacted as exc:
            assert "read again" in str(exc)
        else:
            raise AssertionError("a read below the compaction must raise RangeCompacted")


def _put_sync(endpoint: str, key: str, value: str) -> int:
    """A put from inside a fold's ``add`` (sync, in the trio thread: a test only)."""
    host, port = endpoint.rsplit(":", 1)
    client = etcd3.client(host=host, port=int(port))
    try:
        return client.put(key, value).header.revision
    finally:
        client.close()
