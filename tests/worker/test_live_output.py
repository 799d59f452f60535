"""Live output on the worker (``worker.live_output``, ``live_output_flusher``): what a
running command prints reaches the run store's ``run_output`` while it runs, batched
per interval, bounded per run, and ends with ``eof``."""

from __future__ import annotations

import time

import trio

from cluster.store import open_store
from worker.clock import SystemClock
from worker.executor.process import start_process
from worker.live_output import PENDING_LIMIT_BYTES, RUN_LIMIT_BYTES, LiveOutput
from worker.live_output_flusher import LiveOutputFlusher


def test_a_tap_merges_an_interval_into_one_chunk_per_stream_run_and_numbers_them() -> None:
    live = LiveOutput(SystemClock())
    tap = live.tap("r1")
    for line in (b"a\n", b"b\n", "\u00e9".encode()[:1]):  # half an é: held until its rest
        tap.write("out", line)
    tap.write("err", b"oops\n")
    tap.write("out", "\u00e9".encode()[1:] + b"\n")
    chunks = live.take()
    assert [(c.seq, c.stream, c.data) for c in chunks] == [
        (1, "out", "a\nb\n"), (2, "err", "oops\n"), (3, "out", "\u00e9\n")]
    assert live.take() == []  # nothing new: nothing written
    tap.close()
    assert [(c.seq, c.stream) for c in live.take()] == [(4, "eof")]
    assert live.pending_bytes == 0


def test_a_run_that_printed_nothing_writes_nothing() -> None:
    live = LiveOutput(SystemClock())
    live.tap("quiet").close()
    assert live.take() == []


def test_a_run_over_its_limit_gets_one_marker_and_nothing_more() -> None:
    live = LiveOutput(SystemClock())
    tap = live.tap("loud")
    block = b"x" * 65536
    for _ in range(RUN_LIMIT_BYTES // len(block) + 3):
        tap.write("out", block)
    tap.close()
    chunks = live.take()
    assert [c.stream for c in chunks] == ["out", "trunc", "eof"]
    assert len(chunks[0].data) == RUN_LIMIT_BYTES
    assert "more than" in chunks[1].data
    stats = live.statistics()
    assert stats.bytes_dropped == 3 * len(block) and stats.pending_bytes == 0


def test_output_stops_when_the_pending_bound_is_reached() -> None:
    live = LiveOutput(SystemClock())
    taps = [live.tap(f"r{i}") for i in range(PENDING_LIMIT_BYTES // RUN_LIMIT_BYTES + 1)]
    for tap in taps:
        tap.write("out", b"y" * (RUN_LIMIT_BYTES - 1))
    chunks = live.take()
    last = [c for c in chunks if c.run_id == taps[-1].run_id]
    assert [c.stream for c in last] == ["trunc"] and "behind" in last[0].data
    assert sum(1 for c in chunks if c.stream == "out") == len(taps) - 1


async def test_a_running_commands_output_reaches_the_store_while_it_runs(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/runs.db"
    live = LiveOutput(SystemClock())
    flusher = LiveOutputFlusher(live, url, SystemClock(), flush_s=0.1)
    script = "for i in 1 2 3 4 5 6; do echo line $i; echo warn $i >&2; sleep 0.3; done"
    async with trio.open_nursery() as nursery, open_store(url) as store:
        nursery.start_soon(flusher.run)
        process = await start_process(["bash", "-c", script], env={"PATH": "/usr/bin:/bin"},
                                      cap_bytes=65536, kill_grace_s=1, tap=live.tap("run-1"))
        ended = trio.Event()
        result = None

        async def wait() -> None:
            nonlocal result
            result = await process.wait()
            ended.set()

        nursery.start_soon(wait)
        seen_while_running: list[str] = []
        started = time.monotonic()
        while not ended.is_set():
            chunks = await store.output.read("run-1")
            text = "".join(c.data for c in chunks if c.stream == "out")
            if "line 2" in text and not ended.is_set():
                seen_while_running.append(text)
                break
            await trio.sleep(0.05)
        assert seen_while_running, "no output reached the store while the command ran"
        assert time.monotonic() - started < 1.5  # line 2 printed at ~0.3 s, flushed by ~0.5 s
        await ended.wait()
        with trio.fail_after(3):
            while not (chunks := await store.output.read("run-1")) or chunks[-1].stream != "eof":
                await trio.sleep(0.05)
        out = "".join(c.data for c in chunks if c.stream == "out")
        err = "".join(c.data for c in chunks if c.stream == "err")
        assert out == "".join(f"line {i}\n" for i in range(1, 7)) == result.stdout.decode()
        assert err == "".join(f"warn {i}\n" for i in range(1, 7))
        assert [c.seq for c in chunks] == list(range(1, len(chunks) + 1))
        # Batched per interval, not a row per line: 12 lines over ~1.8 s, 0.1 s rounds.
        assert len(chunks) <= 2 * 19 + 1
        assert live.statistics().chunks_written == len(chunks)
        flusher.request_stop()


def test_the_collector_exposes_the_counts_by_name() -> None:
    from cluster.metrics import new_registry, render
    from worker.live_output_flusher import LiveOutputMetrics

    live = LiveOutput(SystemClock())
    registry = new_registry()
    registry.register(LiveOutputMetrics("scheduler_worker", live.statistics))
    tap = live.tap("r")
    tap.write("out", b"abc")
    live.chunks_written = 7
    text = render(registry).decode()
    assert "scheduler_worker_live_output_chunks_written_total 7.0" in text
    assert "scheduler_worker_live_output_read_bytes_total 3.0" in text
    assert "scheduler_worker_live_output_pending_bytes 3.0" in text
