"""The command handlers: one API call each, then its JSON or its human rendering.

A handler takes the Context and the parsed arguments; the parser (`_parser`) binds
each subcommand to its handler with `set_defaults(handler=...)`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Final

from ._client import api_path
from ._context import Context
from ._errors import UsageError
from ._events import follow_events
from ._follow import FOLLOW_FIRST_PAGE, follow_runs
from ._logs import follow_output, print_logs
from ._format import cell, safe_text
from ._times import parse_time_ms
from ._views import (audit_table, describe_job, describe_run, jobs_table, next_fire,
                     preview_table, runs_table, workers_table)


def cmd_jobs_list(ctx: Context, args: argparse.Namespace) -> None:
    """`jobs list`, and `jobs` with no action."""
    data = ctx.api.get(api_path("jobs"))
    ctx.emit(data, lambda: jobs_table(data.get("jobs", []), ctx.now_ms(),
                                      data.get("lastRunsError")))


def cmd_jobs_get(ctx: Context, args: argparse.Namespace) -> None:
    data = ctx.api.get(api_path("jobs", args.name))
    ctx.emit(data, lambda: describe_job(data["job"], ctx.now_ms()))


def cmd_jobs_put(ctx: Context, args: argparse.Namespace) -> None:
    status, data = ctx.api.call("PUT", api_path("jobs", args.name), body=build_spec(args))
    job = data.get("job", {})
    verb = "created" if status == 201 else "updated"
    for warning in data.get("warnings") or []:  # e.g. the job will never fire
        ctx.warn(safe_text(str(warning)))
    ctx.emit(data, lambda: f"{verb} job {cell(job.get('name', args.name))}; "
                           f"next fire: {next_fire(job, ctx.now_ms())}")


# flag dest -> spec field; a flag given on the command line overrides --file.
_SPEC_FLAGS: Final = {
    "command": "command", "cron": "cronExpr", "tz": "timezone", "job_timeout_s": "timeout",
    "concurrency": "concurrency", "retries": "retries", "retry_backoff_s": "retryBackoff",
    "starting_deadline_s": "startingDeadline", "catch_up": "catchUp", "selector": "selector",
    "paused": "paused", "user": "user", "after": "after",
}


def build_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The PUT body: --file (if any) overlaid with every flag that was given."""
    spec = _read_spec_file(args.file) if args.file else {}
    for dest, field in _SPEC_FLAGS.items():
        value = getattr(args, dest)
        if value is not None:
            spec[field] = value
    if args.env is not None:
        spec["env"] = dict(args.env)
    if args.alerts_on is not None or args.alerts_channels is not None:
        alerts = dict(spec.get("alerts") or {})
        if args.alerts_on is not None:
            alerts["on"] = args.alerts_on
        if args.alerts_channels is not None:
            alerts["channels"] = args.alerts_channels
        spec["alerts"] = alerts
    missing = [f"--{flag}" for flag, field in (("command", "command"), ("cron", "cronExpr"))
               if field not in spec and not (field == "cronExpr" and spec.get("after"))]
    if missing:
        raise UsageError(f"jobs put: {' and '.join(missing)} required (or give --file)")
    return spec


def _read_spec_file(path: str) -> dict[str, Any]:
    return read_object_file(path, "the job spec")


def read_object_file(path: str, what: str) -> dict[str, Any]:
    """The JSON object in ``--file`` (``-`` = stdin); UsageError in one line."""
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        data = json.loads(text)
    except OSError as err:
        raise UsageError(f"cannot read --file {path}: {err.strerror or err}") from None
    except ValueError as err:
        raise UsageError(f"--file {path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise UsageError(f"--file {path} must hold a JSON object ({what})")
    return data


def cmd_jobs_delete(ctx: Context, args: argparse.Namespace) -> None:
    _, data = ctx.api.call("DELETE", api_path("jobs", args.name))
    ctx.emit(data, lambda: f"deleted job {cell(args.name)} "
                           "(its running instance, if any, is killed)")


def cmd_jobs_kill(ctx: Context, args: argparse.Namespace) -> None:
    body = {"runId": args.run_id} if args.run_id else None
    _, data = ctx.api.call("POST", api_path("jobs", args.name, "kill"), body=body)
    target = f"run {cell(args.run_id)}" if args.run_id else "every running instance"
    ctx.emit(data, lambda: f"kill requested for job {cell(args.name)}: {target}")


def cmd_jobs_run(ctx: Context, args: argparse.Namespace) -> None:
    _, data = ctx.api.call("POST", api_path("jobs", args.name, "run"))
    ctx.emit(data, lambda: f"triggered job {cell(args.name)}: run {cell(data.get('runId'))}")


def cmd_jobs_pause(ctx: Context, args: argparse.Namespace) -> None:
    _toggle(ctx, args.name, "pause", "paused")


def cmd_jobs_resume(ctx: Context, args: argparse.Namespace) -> None:
    _toggle(ctx, args.name, "resume", "resumed")


def _toggle(ctx: Context, name: str, action: str, done: str) -> None:
    _, data = ctx.api.call("POST", api_path("jobs", name, action))
    ctx.emit(data, lambda: f"{done} job {cell(name)}; "
                           f"next fire: {next_fire(data.get('job', {}), ctx.now_ms())}")


def _run_query(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    now_s = ctx.now_s()
    return {
        "job": args.job, "status": args.status, "cursor": args.cursor,
        "since": parse_time_ms(args.since, now_s) if args.since else None,
        "until": parse_time_ms(args.until, now_s) if args.until else None,
    }


def cmd_runs(ctx: Context, args: argparse.Namespace) -> None:
    query = _run_query(ctx, args)
    if args.follow:
        follow_runs(ctx, query, args.limit or FOLLOW_FIRST_PAGE)
        return
    data = ctx.api.get(api_path("runs"), **query, limit=args.limit)
    ctx.emit(data, lambda: runs_table(data))


def cmd_runs_logs(ctx: Context, args: argparse.Namespace) -> None:
    if not args.follow:
        print_logs(ctx, args.run_id)
        return
    follow_output(ctx, args.run_id)


def cmd_run(ctx: Context, args: argparse.Namespace) -> None:
    data = ctx.api.get(api_path("runs", args.run_id))
    ctx.emit(data, lambda: describe_run(data["run"]))


def cmd_workers(ctx: Context, args: argparse.Namespace) -> None:
    data = ctx.api.get(api_path("workers"))
    ctx.emit(data, lambda: workers_table(data.get("workers", []), ctx.now_ms(),
                                         data.get("maxClockSkewMs")))


def cmd_whoami(ctx: Context, args: argparse.Namespace) -> None:
    data = ctx.api.get(api_path("whoami"))
    ctx.emit(data, lambda: f"{data['name']} ({data['role']})")


def cmd_events(ctx: Context, args: argparse.Namespace) -> None:
    follow_events(ctx, args.jobs or [])


def cmd_preview(ctx: Context, args: argparse.Namespace) -> None:
    data = ctx.api.get(api_path("cron", "preview"), expr=args.expr, tz=args.tz, n=args.n)
    ctx.emit(data, lambda: preview_table(data, args.expr, ctx.now_ms()))


def cmd_audit(ctx: Context, args: argparse.Namespace) -> None:
    data = ctx.api.get(api_path("audit"), job=args.job, token=args.token_name,
                       limit=args.limit, cursor=args.cursor)
    ctx.emit(data, lambda: audit_table(data))
