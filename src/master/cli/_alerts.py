"""``schedctl alerts``: the alert channels (admin) and test events.

    schedctl alerts channels list
    schedctl alerts channels get NAME
    schedctl alerts channels put NAME --file channel.json      # or '-' for stdin
    schedctl alerts channels put NAME --webhook URL [--secret-file PATH] [--format slack]
    schedctl alerts channels delete NAME
    schedctl alerts test NAME

A secret is read from a file (``--secret-file``) or from the --file JSON, never taken
as a flag value (it would show in ``ps``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._client import api_path
from ._commands import read_object_file
from ._context import Context
from ._errors import UsageError
from ._format import cell, format_fields, format_table


def _where(channel: dict[str, Any]) -> str:
    if channel.get("type") == "webhook":
        return str(channel.get("url", ""))
    return f"{channel.get('host', '')}:{channel.get('port', 587)} -> " \
           f"{', '.join(channel.get('to') or [])}"


def cmd_channels_list(ctx: Context, args: argparse.Namespace) -> None:
    data = ctx.api.get(api_path("alert-channels"))
    channels = data.get("channels", [])

    def render() -> str:
        if not channels:
            return "no alert channels"
        rows = [[cell(c.get("name")), cell(c.get("type")), cell(_where(c), 60),
                 "yes" if c.get("hasSecret") else "-"] for c in channels]
        return format_table(["NAME", "TYPE", "WHERE", "SIGNED"], rows)
    ctx.emit(data, render)


def cmd_channels_get(ctx: Context, args: argparse.Namespace) -> None:
    data = ctx.api.get(api_path("alert-channels", args.name))
    channel = data.get("channel", {})
    ctx.emit(data, lambda: format_fields([(k, cell(v if not isinstance(v, list)
                                                    else ", ".join(v)))
                                          for k, v in channel.items()]))


def cmd_channels_put(ctx: Context, args: argparse.Namespace) -> None:
    body = build_channel(args)
    status, data = ctx.api.call("PUT", api_path("alert-channels", args.name), body=body)
    verb = "created" if status == 201 else "updated"
    ctx.emit(data, lambda: f"{verb} alert channel {cell(args.name)}")


def cmd_channels_delete(ctx: Context, args: argparse.Namespace) -> None:
    data = ctx.api.call("DELETE", api_path("alert-channels", args.name))[1]
    ctx.emit(data, lambda: f"deleted alert channel {cell(args.name)}")


def cmd_alerts_test(ctx: Context, args: argparse.Namespace) -> None:
    status, data = ctx.api.call("POST", api_path("alert-channels", args.name, "test"))
    ctx.emit(data, lambda: f"test alert {cell(data.get('eventId'))} queued for channel "
                           f"{cell(args.name)}: it is sent at once (see the receiver, or "
                           f"scheduler_master_alerts_sent_total)")


def build_channel(args: argparse.Namespace) -> dict[str, Any]:
    if args.file:
        body = read_object_file(args.file, "the channel")
    elif args.webhook:
        body = {"type": "webhook", "url": args.webhook}
    else:
        raise UsageError("alerts channels put: --file or --webhook required")
    if args.format:
        body["format"] = args.format
    if args.secret_file:
        try:
            body["secret"] = Path(args.secret_file).read_text().strip()
        except OSError as err:
            raise UsageError(f"cannot read --secret-file {args.secret_file}: "
                             f"{err.strerror}") from None
    return body


def add_alerts(commands: Any, common: argparse.ArgumentParser, leaf: Any) -> None:
    alerts = commands.add_parser(
        "alerts", help="alert channels (admin) and test alerts",
        description="List, show, create, replace and delete the alert channels (admin "
                    "tokens only; secrets are never shown), and send a test alert.",
        parents=[common])
    sub = alerts.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    leaf(sub, common, "test", cmd_alerts_test,
         "queue a test alert to CHANNEL (the master sends it at once)").add_argument(
        "name", metavar="CHANNEL", help="channel name")
    channels = sub.add_parser("channels", help="list, show, put and delete channels",
                              description="The named alert channels.", parents=[common])
    csub = channels.add_subparsers(dest="channels_command", metavar="ACTION", required=True)
    leaf(csub, common, "list", cmd_channels_list, "list channels (never their secrets)")
    for name, handler, text in (("get", cmd_channels_get, "show one channel"),
                                ("delete", cmd_channels_delete, "delete a channel")):
        leaf(csub, common, name, handler, text).add_argument("name", metavar="NAME")
    put = leaf(csub, common, "put", cmd_channels_put,
               "create or replace a channel; a secret not given keeps the stored one")
    put.add_argument("name", metavar="NAME")
    put.add_argument("--file", metavar="PATH", help="the channel's JSON ('-' = stdin), e.g. "
                     '{"type": "email", "host": "smtp.example", "from": "cron@example", '
                     '"to": ["ops@example"], "username": "cron", "passwordFile": "/etc/pw"}')
    put.add_argument("--webhook", metavar="URL", help="a webhook channel POSTing to URL")
    put.add_argument("--format", choices=("json", "slack"),
                     help="webhook body: the event's JSON (default) or Slack's {text}")
    put.add_argument("--secret-file", metavar="PATH",
                     help="file holding the webhook's signing secret (never a flag value)")
