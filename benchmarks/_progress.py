"""One progress line on stderr, rewritten in place while a benchmark runs.

Why stderr: stdout carries the results table, which a caller may redirect or parse.
When stderr is not a terminal (CI logs), a line is printed at most every few seconds
instead of being rewritten, so logs stay short.
"""

from __future__ import annotations

import sys
import time

PLAIN_EVERY_S = 5.0


class Progress:
    def __init__(self, label: str) -> None:
        self._label = label
        self._tty = sys.stderr.isatty()
        self._last_plain = 0.0
        self._width = 0

    def update(self, text: str) -> None:
        line = f"[{self._label}] {text}"
        if self._tty:
            pad = max(0, self._width - len(line))
            sys.stderr.write("\r" + line + " " * pad)
            sys.stderr.flush()
            self._width = len(line)
            return
        now = time.monotonic()
        if now - self._last_plain >= PLAIN_EVERY_S:
            self._last_plain = now
            print(line, file=sys.stderr, flush=True)

    def step(self, phase: str, elapsed_s: float, total_s: float, extra: str = "") -> None:
        tail = f"  {extra}" if extra else ""
        self.update(f"{phase}: {elapsed_s:5.1f}/{total_s:.0f} s{tail}")

    def done(self, text: str) -> None:
        if self._tty:
            self.update(text)
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._width = 0
        else:
            print(f"[{self._label}] {text}", file=sys.stderr, flush=True)
