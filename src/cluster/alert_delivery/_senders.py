"""How one event reaches one channel: a webhook POST (httpx) or an email (smtplib).

Every call is bounded: a webhook by ``WEBHOOK_TIMEOUT_S`` (httpx's own timeouts and a
trio deadline), an email by ``EMAIL_TIMEOUT_S`` (smtplib's socket timeout, in a thread,
at most ``EMAIL_THREADS`` at once: a thread cannot be cancelled, so its own timeout is
what ends it). A failure raises ``DeliveryFailed`` with one line that never holds a
secret; the deliverer retries it later.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
import time
from email.message import EmailMessage
from typing import Final

import httpx
import trio

from cluster.alerts import HEADER, AlertEvent, Channel, sign
from cluster.config import SecretFileError, read_secret_file

__all__ = ["DeliveryFailed", "Senders", "webhook_body"]

# httpx logs every request's URL at INFO; a webhook URL can hold a token (Slack's and
# Mattermost's do), and no secret may reach a log.
logging.getLogger("httpx").setLevel(logging.WARNING)

WEBHOOK_TIMEOUT_S: Final = 10.0
EMAIL_TIMEOUT_S: Final = 20.0
EMAIL_THREADS: Final = 2
USER_AGENT: Final = "scheduler-alerts/1"


class DeliveryFailed(Exception):
    """One attempt failed (refused, timed out, answered an error): retry later."""


def webhook_body(channel: Channel, event: AlertEvent, public_url: str | None) -> bytes:
    """The JSON body; ``format: slack`` sends Slack/Mattermost's ``{"text": ...}``."""
    if channel.config.get("format") == "slack":
        link = event.link(public_url)
        body: dict[str, object] = {"text": event.summary() + (f"\n{link}" if link else "")}
        body["id"] = event.event_id  # extra keys are ignored by Slack and Mattermost
    else:
        body = event.to_json(public_url)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _password(config: dict) -> str | None:
    if config.get("password"):
        return str(config["password"])
    if path := config.get("passwordFile"):
        try:
            return read_secret_file(str(path))
        except SecretFileError as exc:
            raise DeliveryFailed(f"passwordFile: {exc}") from None
    if name := config.get("passwordEnv"):
        value = os.environ.get(name)
        if value is None:
            raise DeliveryFailed(f"passwordEnv {name} is not set on this host")
        return value
    return None


class Senders:
    """The senders of one process: one HTTP client (its connection pool), one limiter."""

    def __init__(self, client: httpx.AsyncClient, *, wall=time.time) -> None:
        self._client = client
        self._wall = wall
        self._email_threads = trio.CapacityLimiter(EMAIL_THREADS)

    async def send(self, channel: Channel, event: AlertEvent, public_url: str | None) -> None:
        if channel.type == "webhook":
            await self._webhook(channel, event, public_url)
        else:
            await self._email(channel, event, public_url)

    async def _webhook(self, channel: Channel, event: AlertEvent, public_url: str | None) -> None:
        body = webhook_body(channel, event, public_url)
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   "X-Scheduler-Event": event.event_id}
        if secret := channel.config.get("secret"):
            headers[HEADER] = sign(secret, body, int(self._wall()))
        try:
            with trio.fail_after(WEBHOOK_TIMEOUT_S + 1):
                response = await self._client.post(channel.config["url"], content=body,
                                                   headers=headers, timeout=WEBHOOK_TIMEOUT_S)
        except trio.TooSlowError:
            raise DeliveryFailed(f"no answer within {WEBHOOK_TIMEOUT_S:g} s") from None
        except httpx.HTTPError as exc:  # its text never holds the URL
            said = f": {exc}" if str(exc) else ""
            raise DeliveryFailed(f"{type(exc).__name__}{said}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"HTTP {response.status_code}")

    async def _email(self, channel: Channel, event: AlertEvent, public_url: str | None) -> None:
        config = dict(channel.config)
        password = _password(config)
        message = EmailMessage()
        message["Subject"] = event.summary()
        message["From"] = config["from"]
        message["To"] = ", ".join(config["to"])
        message["X-Scheduler-Event"] = event.event_id
        message.set_content(json.dumps(event.to_json(public_url), indent=2, ensure_ascii=False))
        try:
            await trio.to_thread.run_sync(_smtp_send, config, password, message,
                                          limiter=self._email_threads, abandon_on_cancel=True)
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise DeliveryFailed(f"SMTP {config['host']}:{config.get('port', 587)}: "
                                 f"{type(exc).__name__}: {exc}") from None


def _smtp_send(config: dict, password: str | None, message: EmailMessage) -> None:
    """In a thread: connect, STARTTLS (unless ``starttls: false``), log in, send."""
    context = ssl.create_default_context(cafile=config.get("caFile"))
    with smtplib.SMTP(config["host"], config.get("port", 587), timeout=EMAIL_TIMEOUT_S) as smtp:
        smtp.ehlo()
        if config.get("starttls", True):
            smtp.starttls(context=context)
            smtp.ehlo()
        if config.get("username"):
            smtp.login(config["username"], password or "")
        smtp.send_message(message)
