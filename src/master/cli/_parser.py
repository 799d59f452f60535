"""schedctl's command line: subcommands, their flags, and the argument types.

Each leaf subcommand is bound to its handler (`set_defaults(handler=...)`). The
connection options (--url/--token/--json) are accepted before or after the
subcommand, and only when given (argparse.SUPPRESS), so a later one never resets
an earlier one.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from typing import Final, TypeAlias

from cluster.tokens import ROLE_NAMES

from . import _commands as cmd
from ._alerts import add_alerts
from ._stats import add_stats
from . import _tokens as tokens
from ._context import Handler
from ._settings import (DEFAULT_HTTP_TIMEOUT_S, DEFAULT_URL, PROG, TOKEN_ENV, TOKENS_FILE_ENV,
                        URL_ENV)

# cluster.store.RunStatus's values (the CLI does not import the store; a test compares)
RUN_STATUSES: Final = ("succeeded", "failed", "timeout", "killed", "replaced", "lost",
                       "skipped")

# what add_subparsers returns (no public name)
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def glue_negative_values(argv: Sequence[str]) -> list[str]:
    """`--since -1h` -> `--since=-1h`: argparse would take `-1h` for an option."""
    glued: list[str] = []
    items = iter(argv)
    for item in items:
        if item in ("--since", "--until"):
            value = next(items, None)
            glued.append(item if value is None else f"{item}={value}")
        else:
            glued.append(item)
    return glued


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=_Formatter, parents=[common],
        description="Operate the Scheduler (a distributed crontab) through its master's API.",
        epilog="exit codes: 0 ok, 1 API error (403: the token's role may not do that), "
               "2 usage error, 3 cannot connect, 4 unauthorized\n\n"
               f"token: ${TOKEN_ENV}, or --token-file PATH (a --token flag shows in ps)\n\n"
               "examples:\n  schedctl jobs\n"
               "  schedctl jobs put backup --command 'tar czf /b.tgz /srv' --cron '0 3 * * *'\n"
               "  schedctl runs --job backup --since -1d\n"
               "  schedctl events --job backup\n"
               "  schedctl preview '*/10 * * * * *' -n 3\n  schedctl audit --job backup\n"
               "  schedctl stats --window 1h\n"
               "  schedctl alerts channels put ops --webhook https://hooks.example/x \\\n"
               "          --secret-file /etc/scheduler/ops.secret\n"
               "  schedctl alerts test ops\n"
               "  TOKEN=$(schedctl token add ci --role operate \\\n"
               "          --tokens-file /etc/scheduler/tokens)")
    parser.add_argument("--timeout", dest="http_timeout_s", type=_seconds_arg,
                        default=DEFAULT_HTTP_TIMEOUT_S, metavar="SECONDS",
                        help="HTTP timeout per request (default: %(default)s)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_jobs(commands, common)
    _add_runs(commands, common)
    _leaf(commands, common, "run", cmd.cmd_run, "show one run with its output and error text",
          ).add_argument("run_id", metavar="RUN_ID", help="the run's id (see `runs`)")
    _leaf(commands, common, "workers", cmd.cmd_workers,
          "list live workers: labels, load, last seen and clock skew (warned above the "
          "master's --max-clock-skew-s)")
    _leaf(commands, common, "whoami", cmd.cmd_whoami,
          "print the token's name and role (read, operate or admin), as the master sees it")
    events = _leaf(commands, common, "events", cmd.cmd_events,
                   "print the master's live events, one line each, until Ctrl-C: job "
                   "saves, pauses and deletions, runs starting and finishing, workers "
                   "joining and leaving, alerts (reconnects by itself, missing none)")
    events.add_argument("--job", dest="jobs", action="append", metavar="NAME",
                        help="only this job's events (repeat for several)")
    preview = _leaf(commands, common, "preview", cmd.cmd_preview,
                    "show the next fire times of a cron expression (the master computes them)")
    preview.add_argument("expr", metavar="EXPR", help="cron expression, e.g. '*/5 * * * *'")
    preview.add_argument("--tz", help="IANA time zone (default: UTC)")
    preview.add_argument("-n", type=_positive_int(1, 100), default=5,
                         help="how many times, 1-100 (default: %(default)s)")
    _add_audit(commands, common)
    add_alerts(commands, common, _leaf)
    add_stats(commands, common, _leaf)
    _add_token(commands, common)
    return parser


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of the epilog (exit codes, examples)."""


def _common_options() -> argparse.ArgumentParser:
    """--url/--token/--json, also accepted after the subcommand (only when given)."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection and output")
    group.add_argument("--url", default=argparse.SUPPRESS,
                       help=f"master URL (default: ${URL_ENV} or {DEFAULT_URL})")
    group.add_argument("--token", default=argparse.SUPPRESS,
                       help=f"API bearer token (default: ${TOKEN_ENV}; prefer the variable "
                            "or --token-file: a flag shows in the process list)")
    group.add_argument("--token-file", default=argparse.SUPPRESS, metavar="PATH",
                       help="file holding the API bearer token (one line)")
    group.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="print the API's JSON as-is (for scripts)")
    return common


def _leaf(commands: Commands, common: argparse.ArgumentParser, name: str, handler: Handler,
          help_text: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help_text, description=help_text,
                                 parents=[common])
    parser.set_defaults(handler=handler)
    return parser


def _add_jobs(commands: Commands, common: argparse.ArgumentParser) -> None:
    jobs = commands.add_parser("jobs", help="list, show, create, change and act on jobs",
                               description="List, show, create or replace, run, kill, "
                                           "pause, resume and delete jobs. With no ACTION, "
                                           "list them (as `jobs list`).",
                               parents=[common])
    jobs.set_defaults(handler=cmd.cmd_jobs_list)  # `schedctl jobs`: the list
    sub = jobs.add_subparsers(dest="jobs_command", metavar="ACTION")
    _leaf(sub, common, "list", cmd.cmd_jobs_list,
          "list jobs: schedule and the same in words, next fire, last run (status, when, "
          "how long), state (paused, unschedulable), running count, command")
    for name, handler, text in (
        ("get", cmd.cmd_jobs_get, "show one job's full spec, next fire and running instances"),
        ("delete", cmd.cmd_jobs_delete, "delete a job (its running instance is killed)"),
        ("run", cmd.cmd_jobs_run, "run a job now, once, whatever its schedule"),
        ("pause", cmd.cmd_jobs_pause, "pause a job: no scheduled fires until resumed"),
        ("resume", cmd.cmd_jobs_resume, "resume a paused job"),
    ):
        _leaf(sub, common, name, handler, text).add_argument(
            "name", metavar="NAME", help="job name")
    kill = _leaf(sub, common, "kill", cmd.cmd_jobs_kill,
                 "kill a job's running instances (or only one with --run-id)")
    kill.add_argument("name", metavar="NAME", help="job name")
    kill.add_argument("--run-id", help="kill only this run")
    _add_jobs_put(sub, common)


def _add_jobs_put(sub: Commands, common: argparse.ArgumentParser) -> None:
    put = _leaf(sub, common, "put", cmd.cmd_jobs_put,
                "create or replace a job. PUT replaces the whole spec: a field not given "
                "takes its default. Flags override the fields of --file. A job that will "
                "never fire (no future time) is saved, with a warning on stderr.")
    put.add_argument("name", metavar="NAME", help="job name (the spec's name, if any, "
                     "must be the same)")
    put.add_argument("--file", metavar="PATH", help="JSON job spec (camelCase; '-' = stdin)")
    put.add_argument("--command", help="shell command (run with bash -c)")
    put.add_argument("--cron", metavar="EXPR", help="cron expression (5, 6 or 7 fields, "
                     "the 7th a year up to 2099; @daily..., @every 90s)")
    put.add_argument("--timezone", dest="tz", metavar="TZ", help="IANA zone (default UTC)")
    put.add_argument("--timeout", dest="job_timeout_s", type=_seconds_arg, metavar="S",
                     help="kill the run after S seconds (0 = never)")
    put.add_argument("--concurrency", choices=("allow", "forbid", "replace"),
                     help="when the previous run still runs (default forbid)")
    put.add_argument("--retries", type=_positive_int(0, 100), metavar="N",
                     help="extra attempts after a failure")
    put.add_argument("--retry-backoff", dest="retry_backoff_s", type=_seconds_arg,
                     metavar="S", help="seconds before a retry")
    put.add_argument("--starting-deadline", dest="starting_deadline_s", type=_seconds_arg,
                     metavar="S", help="how late a missed fire may still run (0 = no catch-up)")
    put.add_argument("--catch-up", dest="catch_up", choices=("last", "all"),
                     help="after an outage, run once for all the fires missed within the "
                          "starting deadline (last, the default) or each of them, in "
                          "order, at most 100 (all)")
    put.add_argument("--selector", type=_selector, metavar="K=V,...",
                     help="labels a worker must have")
    put.add_argument("--env", type=_key_value, action="append", metavar="K=V",
                     help="environment variable for the command (repeatable)")
    put.add_argument("--user", metavar="USER",
                     help="run as this user; only workers whose --allowed-users list it "
                          "run the job (on others its runs fail); default: the worker's "
                          "--run-as user")
    put.add_argument("--after", type=_after, metavar="JOB[:ON]",
                     help="run once per finished run of JOB that matches ON: succeeded "
                          "(default), failed (also timeout, killed, lost) or completed "
                          "(either; never skipped or replaced); "
                          "with it --cron may be left out (the job then runs only after JOB)")
    put.add_argument("--paused", action=argparse.BooleanOptionalAction, default=None,
                     help="create the job paused (--no-paused: active)")
    put.add_argument("--alerts-on", dest="alerts_on", type=_names, metavar="EVENT,...",
                     help="events that alert: failed, timeout, lost, killed, recovered, "
                          "unschedulable (default: all, or the cluster's default)")
    put.add_argument("--alerts-channels", dest="alerts_channels", type=_names,
                     metavar="NAME,...", help="alert channels (see `schedctl alerts`)")


def _add_runs(commands: Commands, common: argparse.ArgumentParser) -> None:
    runs = _leaf(commands, common, "runs", cmd.cmd_runs,
                 "list runs, newest first, with filters; --follow prints new runs as they "
                 "are recorded. Times: epoch ms, ISO-8601 or relative (-1h, -30m, -2d).")
    runs.add_argument("--job", metavar="NAME", help="only this job's runs")
    runs.add_argument("--status", choices=RUN_STATUSES, help="only runs with this status")
    runs.add_argument("--since", metavar="T", help="runs started at or after T")
    runs.add_argument("--until", metavar="T", help="runs started before T")
    runs.add_argument("--limit", type=_positive_int(1, 1000), metavar="N",
                      help="at most N runs (1-1000; API default 50)")
    runs.add_argument("--cursor", help="next page, as printed after a full page")
    runs.add_argument("-f", "--follow", action="store_true",
                      help="then print every run recorded since, each once, oldest first, "
                           "until Ctrl-C (pages by cursor: no burst is too fast)")
    sub = runs.add_subparsers(dest="runs_command", metavar="ACTION")
    logs = _leaf(sub, common, "logs", cmd.cmd_runs_logs,
                 "print a run's output (stdout to stdout, stderr to stderr); --follow: as "
                 "the running command prints it, like tail -f, until the run ends (exit 0 "
                 "if it succeeded, else 1)")
    logs.add_argument("run_id", metavar="RUN_ID", help="the run's id (see `runs`, `jobs get`)")
    logs.add_argument("-f", "--follow", action="store_true",
                      help="stream the output while the run goes on, then say how it ended")


def _add_audit(commands: Commands, common: argparse.ArgumentParser) -> None:
    audit = _leaf(commands, common, "audit", cmd.cmd_audit,
                  "list the audit trail, newest first: every change (put, delete, pause, "
                  "resume, run, kill) with the name and role of the token that made it")
    audit.add_argument("--job", metavar="NAME", help="only this job's entries")
    audit.add_argument("--token-name", dest="token_name", metavar="NAME",
                       help="only the entries of this token (its name)")
    audit.add_argument("--limit", type=_positive_int(1, 1000), metavar="N",
                       help="at most N entries (1-1000; API default 50)")
    audit.add_argument("--cursor", help="next page, as printed after a full page")


def _add_token(commands: Commands, common: argparse.ArgumentParser) -> None:
    token = commands.add_parser(
        "token", help="add, list or remove the master's named tokens (a local file)",
        description="Edit the master's tokens file (lines 'name role sha256-hex'; no token "
                    "is ever stored). A running master picks a change up within a second. Roles: read (reads only), operate (+ run now, kill, pause, "
                    "resume), admin (everything).", parents=[common])
    sub = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    path_help = f"the master's tokens file (default: ${TOKENS_FILE_ENV})"
    add = _leaf(sub, common, "add", tokens.cmd_token_add,
                "make a new token, store its hash and print the token once on stdout")
    add.add_argument("name", metavar="NAME", help="the token's name (shown in the audit trail)")
    add.add_argument("--role", choices=ROLE_NAMES, required=True, help="what it may do")
    listed = _leaf(sub, common, "list", tokens.cmd_token_list,
                   "list the tokens' names and roles (never a hash)")
    remove = _leaf(sub, common, "remove", tokens.cmd_token_remove, "remove a token by name")
    remove.add_argument("name", metavar="NAME", help="the token's name")
    for parser in (add, listed, remove):
        parser.add_argument("--tokens-file", metavar="PATH", help=path_help)


# ---------------------------------------------------------------- argument types


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _selector(text: str) -> dict[str, str]:
    """`k=v,k2=v2` (empty = no selector) for --selector."""
    pairs = [p for p in text.split(",") if p.strip()]
    return dict(_key_value(p) for p in pairs)


def _after(text: str) -> dict[str, str]:
    """`JOB` or `JOB:ON` for --after."""
    job, _, on = text.partition(":")
    if not job.strip():
        raise argparse.ArgumentTypeError(f"expected JOB or JOB:ON, got {text!r}")
    on = on.strip() or "succeeded"
    if on not in ("succeeded", "failed", "completed"):
        raise argparse.ArgumentTypeError(
            f"ON must be succeeded, failed or completed, got {on!r}")
    return {"job": job.strip(), "on": on}


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def _positive_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value
    return parse


def _seconds_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more seconds")
    return int(value) if value.is_integer() else value
