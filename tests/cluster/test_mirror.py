"""PrefixMirror against a real etcd: first read, events in order, re-read after compaction."""

from __future__ import annotations

from etcd_history import compact
import pytest
import trio
import trio.testing

from cluster.etcd import EventType, PrefixSnapshot, WatchEvent, open_etcd
from cluster.mirror import PrefixMirror


class Listener:
    """Records what the mirror hands over; an unset ``gate`` holds the mirror in its first
    ``on_read`` (backpressure: it watches only once that returns)."""

    def __init__(self) -> None:
        self.reads: list[tuple[dict[str, str], int | None]] = []
        self.events: list[tuple[EventType, str, str]] = []
        self.changed = trio.Event()
        self.gate: trio.Event | None = None
        self.read_arrived = trio.Event()

    async def on_read(self, snapshot: PrefixSnapshot, resumed_after: int | None) -> None:
        self.read_arrived.set()
        if self.gate is not None:
            await self.gate.wait()
        self.reads.append(({kv.key: kv.value.decode() for kv in snapshot.kvs}, resumed_after))
        self._wake()

    async def on_event(self, event: WatchEvent) -> None:
        value = event.kv.value.decode() if event.kv is not None else ""
        self.events.append((event.type, event.key, value))
        self._wake()

    def _wake(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    async def until(self, predicate, timeout_s: float = 10) -> None:  # type: ignore[no-untyped-def]
        with trio.fail_after(timeout_s):
            while not predicate():
                await self.changed.wait()


async def test_first_read_then_every_change_in_order(etcd, etcd_prefix):
    await etcd.put(etcd_prefix + "a", "1")
    mirror = PrefixMirror(etcd, etcd_prefix)
    listener = Listener()
    async with trio.open_nursery() as nursery:
        await nursery.start(mirror.run, listener.on_read, listener.on_event)
        assert listener.reads == [({etcd_prefix + "a": "1"}, None)]
        await etcd.put(etcd_prefix + "b", "2")
        await etcd.put(etcd_prefix + "a", "3")
        await etcd.delete(etcd_prefix + "b")
        await listener.until(lambda: len(listener.events) == 3)
        assert [(t, k[len(etcd_prefix):], v) for t, k, v in listener.events] == [
            (EventType.PUT, "b", "2"), (EventType.PUT, "a", "3"), (EventType.DELETE, "b", "")]
        await listener.until(lambda: mirror.synced)
        assert mirror.statistics().reads == 1
        nursery.cancel_scope.cancel()


async def test_after_a_compaction_it_reads_again_and_follows_on(etcd_factory):
    server = etcd_factory()  # private: compaction is server-wide
    async with open_etcd([server.endpoint]) as etcd:
        await etcd.put("/m/a", "1")
        mirror = PrefixMirror(etcd, "/m/")
        listener = Listener()
        listener.gate = trio.Event()  # held after its first read: it has not watched yet
        async with trio.open_nursery() as nursery:
            nursery.start_soon(mirror.run, listener.on_read, listener.on_event)
            with trio.fail_after(10):
                await listener.read_arrived.wait()
            first = await etcd.put("/m/b", "2")
            await etcd.delete("/m/a")
            latest = await etcd.put("/m/c", "3")
            await trio.to_thread.run_sync(compact, server.endpoint, latest)
            listener.gate.set()
            await listener.until(lambda: len(listener.reads) == 2)
            assert listener.reads[0] == ({"/m/a": "1"}, None)
            state, resumed_after = listener.reads[1]
            assert state == {"/m/b": "2", "/m/c": "3"}
            assert resumed_after is not None and resumed_after >= first - 1
            await etcd.put("/m/d", "4")
            await listener.until(lambda: bool(listener.events) and listener.events[-1][1] == "/m/d")
            assert mirror.statistics().compactions == 1
            nursery.cancel_scope.cancel()


@pytest.fixture
def autojump_clock():
    return trio.testing.MockClock(autojump_threshold=0)


async def test_each_failed_read_or_refused_watch_is_said_and_counted_once(
        caplog, autojump_clock):
    """A review asked whether a retried read was logged or counted twice: one warning
    and one ``on_unavailable`` per failed attempt, whether a read or a watch failed."""
    from cluster.etcd import EtcdUnavailable

    class Down:
        reads = 0

        async def get_prefix(self, prefix, revision=0):
            self.reads += 1
            if self.reads <= 2:
                raise EtcdUnavailable("get", "down")
            return PrefixSnapshot((), 5)

        def watch_prefix(self, *args, **kwargs):
            raise EtcdUnavailable("watch", "down")

    failures: list[EtcdUnavailable] = []
    mirror = PrefixMirror(Down(), "/p/", on_unavailable=failures.append)  # type: ignore[arg-type]
    listener = Listener()
    with trio.move_on_after(30):  # two reads fail, then each watch is refused
        await mirror.run(listener.on_read, listener.on_event)
    said = [r for r in caplog.records if r.name == "cluster.mirror"]
    kinds = [str(f).split(":")[0] for f in failures]
    assert kinds[:2] == ["etcd unavailable for get"] * 2
    assert kinds[2:] and set(kinds[2:]) == {"etcd unavailable for watch"}
    assert len(said) == len(failures) and len(listener.reads) == len(kinds) - 2
