"""The spill file's format on disk: one ``RunRecord.to_json()`` per line, compact JSON,
ASCII; whole lines only.

A line is whole once its newline is written: a torn last line (a crash in the middle
of an append) is cut off at open (``cut_torn_tail``) and handed to the rejected file.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from cluster.store import RunRecord

from .rejected import Rejection

log = logging.getLogger(__name__)

COPY_CHUNK_BYTES = 1 << 20


def encode_lines(records: Sequence[RunRecord]) -> bytes:
    return "".join(json.dumps(r.to_json(), separators=(",", ":")) + "\n"
                   for r in records).encode("ascii")  # ensure_ascii: always ASCII


def parse_line(raw: bytes, records: list[RunRecord], unreadable: list[Rejection]) -> None:
    try:
        records.append(RunRecord.from_json(json.loads(raw)))
    except (ValueError, TypeError, KeyError) as exc:  # bad JSON, or not a run record
        unreadable.append(Rejection(f"unreadable spill line: {exc}",
                                    line=raw.decode("utf-8", "backslashreplace")))


def cut_torn_tail(fd: int, path: Path) -> str | None:
    """Cut a last line that lacks its newline; return it (decoded) or None."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return None
    end = size
    while end > 0:  # find the last newline, scanning back a chunk at a time
        start = max(0, end - COPY_CHUNK_BYTES)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            end = start + newline + 1
            break
        end = start
    fragment = os.pread(fd, size - end, end)
    os.ftruncate(fd, end)
    os.fsync(fd)
    log.warning("spill file %s: cut a torn last line of %d bytes", path, len(fragment))
    return fragment.decode("utf-8", "backslashreplace")


def pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def count_lines(fd: int, size: int) -> int:
    lines, pos = 0, 0
    while pos < size:
        chunk = os.pread(fd, min(COPY_CHUNK_BYTES, size - pos), pos)
        lines += chunk.count(b"\n")
        pos += len(chunk)
    return lines
