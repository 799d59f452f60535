"""``GET /api/v1/runs/<runId>/output``: a run's live output as a server-sent event
stream, like ``tail -f``, to its final record (docs/api.md "Live output").

Where it comes from: the workers write what running commands print into the run
store's ``run_output`` table every 250 ms (``worker.live_output``); this stream reads
the run's chunks after the last one sent, every ``POLL_S``, so a worker needs no
inbound port and a stream costs the store one indexed read per poll. Events:
``output`` (``{"stream": "out"|"err", "data", "at"}``, id = the chunk's ``seq``, so
``Last-Event-ID`` resumes after it), ``truncated`` (the worker stopped streaming the
run: too much output, or the store was behind; id as ``output``), then, once the
run's record is in the store and the worker said the output ended (``eof``, or
``EOF_WAIT_S`` after the record), a last ``end`` (``{"runId", "status", "exitCode",
"endTime", "outputTruncated"}``, no id) and the body ends. A heartbeat comment every
``HEARTBEAT_S``. A run that is neither recorded, nor streaming, nor running (no
``running/`` key) is a 404; one that stops running with no record (its worker died:
the survivors record it ``lost``) ends with ``end`` of status ``lost`` if that
record comes within ``GONE_WAIT_S``, or status null after it.

Authenticated as every API route (role ``read``: the output is what the run's record
shows that role anyway); the token goes in the header, as for ``/api/v1/events``.
At most ``MAX_STREAMS`` at once (503 beyond): each polls the store. Ended when the
master stops, with the other streams (``close_all``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Final

import trio
from quart import Blueprint, Response, request

from cluster.store import OutputChunk, RunRecord, StoreError

from .ask import ask_jobs, ask_runs
from .context import MasterContext
from .errors import ApiError, BadRequest, RunNotFound, Unavailable
from .inputs import check_run_id

if TYPE_CHECKING:
    from .services import Services

__all__ = ["OutputStreams", "output_routes"]

EVENT_STREAM_TYPE: Final = "text/event-stream; charset=utf-8"
POLL_S: Final = 0.2
HEARTBEAT_S: Final = 15.0
EOF_WAIT_S: Final = 2.0  # after the record: the worker's last flush may still come
GONE_CHECK_S: Final = 5.0  # how often a quiet, unrecorded run's running/ key is read
GONE_WAIT_S: Final = 60.0  # no running key and no record for this long: it ends
MAX_STREAMS: Final = 32
READ_LIMIT: Final = 200


class OutputStreams:
    """The open streams: counted (the gauge, the cap) and ended when the master stops."""

    def __init__(self, ctx: MasterContext) -> None:
        self._ctx = ctx
        self.open = 0
        self.closing = trio.Event()  # set when the master stops: every stream ends

    def close_all(self) -> None:
        self.closing.set()

    def full(self) -> bool:
        return self.closing.is_set() or self.open >= MAX_STREAMS

    def _count(self, change: int) -> None:
        self.open += change
        self._ctx.metrics.output_streams.set(self.open)


def output_routes(ctx: MasterContext, services: Services) -> Blueprint:
    streams = services.outputs
    bp = Blueprint("output", __name__, url_prefix="/api/v1")

    @bp.get("/runs/<runId>/output")
    async def run_output(runId: str) -> Response:  # noqa: N803 (the API's name for it)
        run_id = check_run_id(runId, "runId")
        after = last_seq(request.headers.get("Last-Event-ID"))
        if streams.full():
            raise Unavailable(f"too many output streams open (at most {MAX_STREAMS})")
        first = await ask_runs(ctx, services.runs.read_output, run_id, after, READ_LIMIT)
        record = None if first else await ask_runs(ctx, services.runs.get_run, run_id)
        if not first and record is None and after == 0 \
                and not await ask_jobs(ctx, services.jobs.is_running, run_id):
            raise RunNotFound(run_id)
        if request.method == "HEAD":
            return Response(b"", content_type=EVENT_STREAM_TYPE)
        body = _Stream(ctx, services, streams, run_id, after, first).body()
        response = Response(body, content_type=EVENT_STREAM_TYPE)
        response.timeout = None  # it ends with the run, however long that is
        response.headers["X-Accel-Buffering"] = "no"
        return response

    return bp


def last_seq(header: str | None) -> int:
    if header is None:
        return 0
    value = header.strip()
    if not value.isdigit() or len(value) > 9:
        raise BadRequest("Last-Event-ID", "the id of an output event of this run (a number)")
    return int(value)


def chunk_block(chunk: OutputChunk) -> bytes:
    if chunk.stream == "eof":
        return f"id: {chunk.seq}\nevent: eof\ndata: {{}}\n\n".encode()
    if chunk.stream == "trunc":
        return _block("truncated", {"reason": chunk.data, "at": chunk.at_ms}, chunk.seq)
    return _block("output", {"stream": chunk.stream, "data": chunk.data, "at": chunk.at_ms},
                  chunk.seq)


def end_block(run_id: str, record: RunRecord | None) -> bytes:
    if record is None:
        return _block("end", {"runId": run_id, "status": None,
                              "reason": "the run stopped running and was not recorded"})
    return _block("end", {"runId": run_id, "status": record.status.value,
                          "exitCode": record.exit_code, "endTime": record.end_time,
                          "outputTruncated": record.output_truncated})


def _block(kind: str, data: dict[str, Any], seq: int | None = None) -> bytes:
    body = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {kind}\ndata: {body}\n\n".encode()


def printed(record: RunRecord) -> bool:
    """Whether the command printed anything (the ``[scheduler]`` lines are ours)."""
    return bool(record.output) or any(not line.startswith("[scheduler]")
                                      for line in record.err.splitlines())


class _Stream:
    """One stream's state: the last seq sent, whether ``eof`` came, the record."""

    def __init__(self, ctx: MasterContext, services: Services, streams: OutputStreams,
                 run_id: str, after: int, first: list[OutputChunk]) -> None:
        self._ctx, self._services, self._streams = ctx, services, streams
        self._run_id = run_id
        self._after = after
        self._pending = first
        self._eof = False
        self._recorded_at: float | None = None
        self._gone_since: float | None = None
        self._next_gone_check = trio.current_time() + GONE_CHECK_S

    async def body(self) -> AsyncIterator[bytes]:
        """The response body. No ``yield`` inside a cancel scope (an async generator's
        rule): the master's stop is an event the poll waits on."""
        streams = self._streams
        streams._count(+1)
        try:
            last_write = trio.current_time()
            while not streams.closing.is_set():
                chunks, self._pending = self._pending, []
                if not chunks:
                    chunks = await self._read()
                if chunks:
                    self._after = chunks[-1].seq
                    self._eof = self._eof or any(c.stream == "eof" for c in chunks)
                    last_write = trio.current_time()
                    yield b"".join(chunk_block(c) for c in chunks)
                    if len(chunks) == READ_LIMIT:
                        continue  # more is waiting: no sleep
                end = await self._end()
                if end is not None:
                    yield end
                    return
                if trio.current_time() - last_write >= HEARTBEAT_S:
                    last_write = trio.current_time()
                    yield f": heartbeat\nid: {self._after}\n\n".encode()
                with trio.move_on_after(POLL_S):
                    await streams.closing.wait()
        finally:
            streams._count(-1)

    async def _read(self) -> list[OutputChunk]:
        try:
            return await ask_runs(self._ctx, self._services.runs.read_output, self._run_id,
                                  self._after, READ_LIMIT)
        except (ApiError, StoreError):
            return []  # the store is down: the next poll tries again

    async def _end(self) -> bytes | None:
        """The ``end`` block once the run is over and its output read; else None."""
        ctx, services, now = self._ctx, self._services, trio.current_time()
        try:
            record = await ask_runs(ctx, services.runs.get_run, self._run_id)
        except (ApiError, StoreError):
            return None
        if record is not None:
            self._recorded_at = self._recorded_at or now
            if self._eof or not printed(record) or now - self._recorded_at >= EOF_WAIT_S:
                return end_block(self._run_id, record)
            return None
        if now < self._next_gone_check:
            return None
        self._next_gone_check = now + GONE_CHECK_S
        try:
            running = await ask_jobs(ctx, services.jobs.is_running, self._run_id)
        except (ApiError, StoreError):
            return None
        if running:
            self._gone_since = None
            return None
        self._gone_since = self._gone_since or now
        return end_block(self._run_id, None) if now - self._gone_since >= GONE_WAIT_S else None
