"""``/api/v1/alert-channels``: the named alert channels, admin only (docs/api.md).

    GET    /alert-channels               every channel, secrets never shown
    GET    /alert-channels/<name>        one
    PUT    /alert-channels/<name>        create (201) or replace (200); omitted
                                         secrets are kept, null removes them
    DELETE /alert-channels/<name>        delete (a job naming it alerts no more there)
    POST   /alert-channels/<name>/test   queue a test event to it (202, its event id)
"""

from __future__ import annotations

from quart import Blueprint, Response, request

from cluster.alerts import AlertSettingsError, Channel

from .ask import ask_jobs, ask_runs
from .context import MasterContext
from .errors import BadRequest
from .inputs import read_json_object
from .responses import json_response
from .services import Services

__all__ = ["alert_routes"]


def alert_routes(ctx: MasterContext, services: Services) -> Blueprint:
    bp = Blueprint("alerts", __name__, url_prefix="/api/v1")
    alerts = services.alerts

    @bp.get("/alert-channels")
    async def list_channels() -> Response:
        channels: list[Channel] = await ask_jobs(ctx, alerts.channels)
        return json_response({"channels": [c.public_json() for c in channels]})

    @bp.get("/alert-channels/<name>")
    async def get_channel(name: str) -> Response:
        channel: Channel = await ask_jobs(ctx, _checked(alerts.channel), name)
        return json_response({"channel": channel.public_json()})

    @bp.put("/alert-channels/<name>")
    async def save_channel(name: str) -> Response:
        document = await read_json_object(request, field="channel")
        assert document is not None
        channel, created = await ask_jobs(ctx, _checked(alerts.save), name, document)
        return json_response({"channel": channel.public_json()}, 201 if created else 200)

    @bp.delete("/alert-channels/<name>")
    async def delete_channel(name: str) -> Response:
        channel: Channel = await ask_jobs(ctx, _checked(alerts.delete), name)
        return json_response({"channel": channel.public_json()})

    @bp.post("/alert-channels/<name>/test")
    async def test_channel(name: str) -> Response:
        await ask_jobs(ctx, _checked(alerts.channel), name)
        event_id: str = await ask_runs(ctx, alerts.send_test, name)
        return json_response({"channel": name, "eventId": event_id}, 202)

    return bp


def _checked(fn):
    """``fn`` with an invalid channel (AlertSettingsError) answered as a 400."""
    async def call(*args):
        try:
            return await fn(*args)
        except AlertSettingsError as exc:
            raise BadRequest(exc.field, exc.reason) from None
    return call
