"""The live output table (``run_output``) on both backends: chunks round-trip in
order after a sequence number, a batch written again stores each chunk once, runs do
not see each other's chunks, and pruning deletes only old chunks, a batch at a time."""

from __future__ import annotations

from cluster.store import OutputChunk, open_store

from store_testkit import T0


def chunk(run_id: str, seq: int, stream: str = "out", data: str | None = None,
          at_ms: int | None = None) -> OutputChunk:
    return OutputChunk(run_id, seq, stream, f"line {seq} ünï ✓\n" if data is None else data,
                       T0 + seq if at_ms is None else at_ms)


async def test_chunks_round_trip_in_order_after_a_seq(store):
    a = [chunk("run-a", i, "err" if i % 3 == 0 else "out") for i in range(1, 8)]
    b = [chunk("run-b", i) for i in range(1, 4)]
    await store.output.append(a[:5] + b)
    await store.output.append(a[3:])  # the same batch again (lost answer): stored once
    assert await store.output.read("run-a") == a
    assert await store.output.read("run-a", after_seq=4) == a[4:]
    assert await store.output.read("run-a", after_seq=2, limit=2) == a[2:4]
    assert await store.output.read("run-b") == b
    assert await store.output.read("run-c") == []
    assert await store.output.read("run-a", after_seq=7) == []


async def test_markers_and_big_chunks_are_kept_as_written(store):
    big = "x" * 200_000 + "é\n"
    chunks = [chunk("r", 1, data=big), chunk("r", 2, "trunc", "live output stopped"),
              chunk("r", 3, "eof", "")]
    await store.output.append(chunks)
    assert await store.output.read("r") == chunks


async def test_prune_deletes_old_chunks_only_in_batches(store):
    old = [chunk("old", i, at_ms=T0 - 10_000 + i) for i in range(1, 6)]
    new = [chunk("new", i, at_ms=T0 + i) for i in range(1, 3)]
    await store.output.append(old + new)
    assert await store.output.prune(T0, batch_size=3) == 3
    assert await store.output.prune(T0, batch_size=3) == 2
    assert await store.output.prune(T0, batch_size=3) == 0
    assert await store.output.read("old") == []
    assert await store.output.read("new") == new


async def test_the_table_is_made_on_first_use_and_kept(tmp_path):
    """Made by the first call (a read too: the master may read before any worker
    wrote), and its rows outlive the store that wrote them."""
    url = f"sqlite:///{tmp_path}/runs.db"
    async with open_store(url) as store:
        assert await store.output.read("x") == []
        await store.output.append([chunk("x", 1)])
    async with open_store(url) as store:
        assert await store.output.read("x") == [chunk("x", 1)]
