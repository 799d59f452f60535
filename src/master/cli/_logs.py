"""`runs logs RUN [--follow]`: a run's output; with --follow, as it is printed, like
``tail -f``, until the run ends (GET /api/v1/runs/<runId>/output, server-sent events).

What the command printed goes to stdout, what it wrote to stderr to stderr, both with
terminal control characters escaped (a job's output must not drive the terminal).
When the run ends, one line on stderr says how: ``[run <id> succeeded, exit 0]`` and
exit 0, or, when it did not succeed, ``schedctl: run <id> failed, exit 3`` and exit 1
(``RunDidNotSucceed``), so that scripts can tell. A
stream that breaks, or is silent for three heartbeats, is opened again with the number
of the last chunk received (``Last-Event-ID``), after a backoff (`_sse_stream`, shared
with `events`): nothing is printed twice or missed. Without
--follow: the output and error text of the run's record (a finished run).
"""

from __future__ import annotations

import json
import sys
from contextlib import closing
from typing import Any

from ._client import api_path
from ._context import Context
from ._errors import EXIT_API, CliError
from ._format import safe_text
from ._sse import SseEvent
from ._sse_stream import sse_events


class RunDidNotSucceed(CliError):
    """The followed run ended with another status than ``succeeded`` (exit 1)."""

    exit_code = EXIT_API


def print_logs(ctx: Context, run_id: str) -> None:
    run = ctx.api.get(api_path("runs", run_id))["run"]
    if ctx.json_mode:
        ctx.print_json({"runId": run_id, "output": run.get("output"), "err": run.get("err")})
        return
    ctx.out.write(safe_text(str(run.get("output") or "")))
    ctx.out.flush()
    sys.stderr.write(safe_text(str(run.get("err") or "")))
    sys.stderr.flush()


def follow_output(ctx: Context, run_id: str) -> None:
    """Print the run's output as it comes, until it ends (RunDidNotSucceed unless it
    succeeded) or Ctrl-C."""
    try:
        with closing(sse_events(ctx, api_path("runs", run_id, "output"),
                                ended="the stream ended before the run did")) as events:
            for event in events:
                if _show(ctx, run_id, event):
                    return
    except KeyboardInterrupt:
        return  # Ctrl-C: the run goes on, following it was the user's to stop


def _show(ctx: Context, run_id: str, event: SseEvent) -> bool:
    """Print one event; True once it is ``end`` (raises if the run did not succeed)."""
    try:
        data: dict[str, Any] = json.loads(event.data)
    except ValueError:
        data = {}
    if ctx.json_mode:
        ctx.print_json({"id": event.id, "event": event.event, "data": data}, compact=True)
    elif event.event == "output":
        target = sys.stderr if data.get("stream") == "err" else ctx.out
        target.write(safe_text(str(data.get("data", ""))))
        target.flush()
    elif event.event == "truncated":
        ctx.warn(safe_text(str(data.get("reason", "live output truncated"))))
    if event.event != "end":
        return False
    status, code = data.get("status"), data.get("exitCode")
    how = (f"{safe_text(str(status or 'ended without a record'))}"
           f"{'' if code is None else f', exit {code}'}")
    if status != "succeeded":
        raise RunDidNotSucceed(f"run {safe_text(run_id)} {how}")
    if not ctx.json_mode:
        print(f"[run {safe_text(run_id)} {how}]", file=sys.stderr, flush=True)
    return True
