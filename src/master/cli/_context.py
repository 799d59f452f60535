"""`Context`: what a command handler may use, so handlers never touch globals."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from ._client import Api


@dataclass(frozen=True, slots=True)
class Context:
    """What a command handler may use: the API, the output stream and the clocks."""

    api: Api
    out: TextIO
    json_mode: bool
    now_s: Callable[[], float]
    sleep: Callable[[float], None]

    def now_ms(self) -> int:
        return int(self.now_s() * 1000)

    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def print_json(self, data: Any, *, compact: bool = False) -> None:
        self.print(json.dumps(data, ensure_ascii=False, indent=None if compact else 2))

    def warn(self, text: str) -> None:
        """One warning line on stderr (stdout stays the answer, --json or not)."""
        print(f"schedctl: warning: {text}", file=sys.stderr, flush=True)

    def emit(self, data: Any, render: Callable[[], str]) -> None:
        """The API's JSON under --json, else the human rendering of it."""
        if self.json_mode:
            self.print_json(data)
        else:
            self.print(render())


Handler = Callable[[Context, argparse.Namespace], None]
