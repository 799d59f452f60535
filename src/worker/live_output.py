"""What running commands print, held for the run store's ``run_output`` (DESIGN §8
"Live output"): one ``LiveOutput`` per worker tree, a ``Tap`` per run.

The hot path is the Executor's pipe readers (``executor.process``): each chunk they
read is handed to the run's tap, which appends the bytes to a list and adds their
length; no decoding, no I/O, no checkpoint. Every ``FLUSH_S`` the flusher
(``live_output_flusher``, a child of its own with its own store connection) ``take``s
what all runs printed since, decoded and merged into one chunk per run and stream
change, and writes it in one statement: a run that prints a line every millisecond
costs four rows a second, not a thousand.

Bounds: a run streams at most ``RUN_LIMIT_BYTES`` (1 MiB); beyond it the run gets one
``trunc`` marker and nothing more (its record keeps its own capped output, as ever).
What waits to be written is at most ``PENDING_LIMIT_BYTES`` across runs (the store is
slow or down): beyond that, new output is dropped, counted, and the run's stream
says so with a ``trunc`` marker. Live output is a view, best effort; the run record
stays the durable truth. A run that printed anything ends with an ``eof`` chunk
(``Tap.close``, when its pipes are read to the end): the master ends a stream on it.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Final

from cluster.store import OutputChunk

from .clock import WallClock

__all__ = ["FLUSH_S", "LiveOutput", "LiveOutputStatistics", "PENDING_LIMIT_BYTES",
           "RUN_LIMIT_BYTES", "Tap"]

FLUSH_S: Final = 0.25
RUN_LIMIT_BYTES: Final = 1 << 20
PENDING_LIMIT_BYTES: Final = 8 << 20
TRUNCATED: Final = f"[scheduler] live output stopped here: more than {RUN_LIMIT_BYTES} bytes"
BEHIND: Final = "[scheduler] live output stopped here: the run store is behind"


@dataclass(frozen=True, slots=True)
class LiveOutputStatistics:
    chunks_written: int  # rows stored in run_output (markers included)
    bytes_read: int  # bytes the taps took (what was streamed, before the bounds)
    bytes_dropped: int  # bytes over a run's limit or the pending limit
    write_failures: int  # flushes the store refused (kept and tried again)
    pending_bytes: int


class Tap:
    """One run's output on its way to the store. Made by ``LiveOutput.tap`` only."""

    __slots__ = ("_live", "run_id", "segments", "sent", "seq", "stopped", "closed",
                 "decoders")

    def __init__(self, live: LiveOutput, run_id: str) -> None:
        self._live = live
        self.run_id = run_id
        self.segments: list[tuple[str, bytes]] = []  # (stream, bytes) not yet taken
        self.sent = 0  # bytes accepted so far
        self.seq = 0  # the last chunk number given out
        self.stopped: str | None = None  # why nothing more is streamed (a marker is due)
        self.closed = False
        self.decoders = {s: codecs.getincrementaldecoder("utf-8")("replace")
                         for s in ("out", "err")}

    def write(self, stream: str, data: bytes) -> None:
        """``stream`` ``out`` or ``err``. Never blocks; O(1)."""
        live = self._live
        live.bytes_read += len(data)
        if self.stopped is not None or self.closed:
            live.bytes_dropped += len(data)
            return
        if self.sent + len(data) > RUN_LIMIT_BYTES or \
                live.pending_bytes + len(data) > PENDING_LIMIT_BYTES:
            self.stopped = TRUNCATED if self.sent + len(data) > RUN_LIMIT_BYTES else BEHIND
            live.bytes_dropped += len(data)
            live.dirty.add(self)
            return
        self.segments.append((stream, data))
        self.sent += len(data)
        live.pending_bytes += len(data)
        live.dirty.add(self)

    def close(self) -> None:
        """The run's pipes are read to the end; idempotent."""
        if not self.closed:
            self.closed = True
            self._live.dirty.add(self)

    def _take(self, now_ms: int) -> list[OutputChunk]:
        merged: list[list[str]] = []  # [stream, text]: a stream's run of segments, joined
        for stream, data in self.segments:
            text = self.decoders[stream].decode(data).replace("\x00", "")
            if merged and merged[-1][0] == stream:
                merged[-1][1] += text
            else:
                merged.append([stream, text])
        self.segments = []
        chunks = [OutputChunk(self.run_id, 0, s, t, now_ms) for s, t in merged if t]
        if self.stopped:
            chunks.append(OutputChunk(self.run_id, 0, "trunc", self.stopped, now_ms))
            self.stopped = ""  # said once; still nothing more is streamed
        if self.closed and (self.seq or chunks):  # a run that printed nothing writes nothing
            for stream, decoder in self.decoders.items():
                if rest := decoder.decode(b"", final=True):
                    chunks.append(OutputChunk(self.run_id, 0, stream, rest, now_ms))
            chunks.append(OutputChunk(self.run_id, 0, "eof", "", now_ms))
        numbered = []
        for c in chunks:
            self.seq += 1
            numbered.append(OutputChunk(c.run_id, self.seq, c.stream, c.data, c.at_ms))
        return numbered


class LiveOutput:
    """The taps of one worker's running runs, and what they hold; see the module."""

    def __init__(self, clock: WallClock) -> None:
        self._clock = clock
        self._taps: dict[str, Tap] = {}
        self.dirty: set[Tap] = set()  # taps with something to take
        self.pending_bytes = 0
        self.bytes_read = self.bytes_dropped = 0
        self.chunks_written = self.write_failures = 0

    def tap(self, run_id: str) -> Tap:
        tap = self._taps[run_id] = Tap(self, run_id)
        return tap

    def take(self) -> list[OutputChunk]:
        """Every chunk printed since the last take, numbered; closed runs are forgotten."""
        now_ms = self._clock.now_ms()
        chunks: list[OutputChunk] = []
        for tap in self.dirty:
            self.pending_bytes -= sum(len(d) for _, d in tap.segments)
            chunks += tap._take(now_ms)
            if tap.closed and self._taps.get(tap.run_id) is tap:
                del self._taps[tap.run_id]
        self.dirty = set()
        return chunks

    def statistics(self) -> LiveOutputStatistics:
        return LiveOutputStatistics(self.chunks_written, self.bytes_read, self.bytes_dropped,
                                    self.write_failures, self.pending_bytes)
