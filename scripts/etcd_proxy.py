"""A TCP proxy on loopback between one client and one server, for network-fault tests.

It stands for the network between a worker and etcd: ``pause()`` holds every byte in
both directions without closing anything (a cable pulled, a partition: the client
sees no error, only silence), ``resume()`` lets the held bytes through, ``delay(s)``
holds every request ``s`` seconds before passing it on (a slow link). Runs in the test's
trio loop: ``async with EtcdProxy(target) as proxy`` listens on ``proxy.endpoint``
and closes every connection on exit.

It lives in ``scripts/`` because the fault tests and ``benchmarks.fault_partition``
both use it (one copy); unlike ``services.py`` it needs trio, so it is imported from the
project's venv only (tests: ``scripts/`` is on ``sys.path`` by ``tests/conftest.py``;
benchmarks: ``benchmarks/_servers.py``), never run before the venv exists.
"""

from __future__ import annotations

import functools

import trio

CHUNK = 65536


class EtcdProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target`` (``host:port``); see the module doc."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self._flowing = trio.Event()
        self._flowing.set()
        self._delay_s = 0.0
        self.port = 0
        self.connections = 0
        self._nursery: trio.Nursery | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def pause(self) -> None:
        """Hold every byte, both ways, until ``resume``; connections stay open."""
        if self._flowing.is_set():
            self._flowing = trio.Event()

    def resume(self) -> None:
        self._flowing.set()

    def delay(self, seconds: float) -> None:
        """Hold each request chunk (client to server) this long before passing it on,
        so each request's answer comes ``seconds`` later (0: none)."""
        self._delay_s = seconds

    async def __aenter__(self) -> "EtcdProxy":
        self._cm = trio.open_nursery()
        self._nursery = await self._cm.__aenter__()
        listeners = await self._nursery.start(
            functools.partial(trio.serve_tcp, self._serve, 0, host="127.0.0.1"))
        self.port = listeners[0].socket.getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> bool | None:
        assert self._nursery is not None
        self._nursery.cancel_scope.cancel()
        return await self._cm.__aexit__(*exc)

    async def _serve(self, client: trio.SocketStream) -> None:
        self.connections += 1
        try:
            server = await trio.open_tcp_stream(*self._target)
        except OSError:
            await client.aclose()
            return
        async with client, server, trio.open_nursery() as nursery:
            nursery.start_soon(self._pipe, client, server, True, nursery.cancel_scope)
            nursery.start_soon(self._pipe, server, client, False, nursery.cancel_scope)

    async def _pipe(self, source: trio.SocketStream, sink: trio.SocketStream,
                    requests: bool, scope: trio.CancelScope) -> None:
        """Copy one direction; when it ends (either side closed), end both.

        Each chunk of a request (client to server) is due ``delay`` after it arrived,
        in order, not one delay after another: many streams share one HTTP/2
        connection, and a slow link delays each of them once, not by the queue.
        """
        send, receive = trio.open_memory_channel[tuple[float, bytes]](1000)

        async def read() -> None:
            async with send:
                while data := await source.receive_some(CHUNK):
                    due = trio.current_time() + (self._delay_s if requests else 0.0)
                    await send.send((due, data))

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read)
                async with receive:
                    async for due, data in receive:
                        await trio.sleep_until(due)
                        await self._flowing.wait()
                        await sink.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            scope.cancel()
