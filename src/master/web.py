"""The master's Quart-trio app: routes, auth, limits, headers, and every error as JSON.

Request pipeline::

    routing ─> before: browser guard (Host, then Origin on writes: browser_guard.py)
            ─> before: bearer token and its role (except /healthz and the UI files),
               body size
            ─> handler (validates, asks a service under a deadline, shapes JSON)
            ─> after: security headers, no-store, request metrics

Errors: an ApiError renders itself; werkzeug's own HTTP errors (unknown route, wrong
method, body too large, ...) are mapped onto the same tree; anything else is logged
with its traceback and answered 500 ``internal`` with a generic sentence. Nothing
reaches a client as a traceback or as an empty 200, and the seed's paths get the
seed's envelope.
"""

from __future__ import annotations

import logging

from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from cluster.config import Config

from . import browser_guard, ops, static
from .api import JobNameConverter, api_routes
from .alerts_api import alert_routes
from .audit_api import audit_routes
from .stats_api import stats_routes
from .events_api import event_routes
from .output_api import output_routes
from .auth import TokensReloader
from .caller import set_caller
from .context import MasterContext
from .errors import (
    ApiError,
    BadRequest,
    Forbidden,
    Internal,
    MethodNotAllowed,
    PayloadTooLarge,
    RouteNotFound,
    Unauthorized,
    UnsupportedMediaType,
)
from .inputs import MAX_BODY_BYTES
from .metrics import method_label
from .responses import SECURITY_HEADERS, api_error
from .roles import required_role
from .seed import seed_routes
from .services import Services

__all__ = ["create_app", "create_metrics_app"]

log = logging.getLogger(__name__)

PUBLIC_ENDPOINTS = static.PUBLIC_ENDPOINTS | ops.PUBLIC_ENDPOINTS


def create_app(ctx: MasterContext, services: Services) -> QuartTrio:
    """The full app: API, seed endpoints, operations endpoints and the web UI."""
    app = _bare_app(ctx.config)
    app.url_map.converters["asset"] = static.AssetConverter
    app.url_map.converters["job"] = JobNameConverter
    tokens = TokensReloader(ctx.config)  # TokensFileError: main() checked the file already
    app.before_request(browser_guard.guard_hook(ctx.config))  # first: token or not

    @app.before_request
    async def authenticate() -> None:
        # No route for this method and path: routing answers 404/405 to anyone (the
        # route table is public, docs/api.md); the token guards what routes lead to,
        # and its role what it may do there (roles.REQUIRED_ROLES).
        rule = request.url_rule
        if rule is not None and request.endpoint not in PUBLIC_ENDPOINTS:
            auth = await tokens.current()
            identity = auth.identify(request.headers.get("Authorization"))
            if identity is None:
                raise Unauthorized()
            required = required_role(request.method, rule.rule)
            if not identity.role.allows(required):
                raise Forbidden(identity.name, identity.role.value, required.value)
            set_caller(identity)
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise PayloadTooLarge(MAX_BODY_BYTES)

    async def has_valid_token() -> bool:
        """/healthz says more to a caller with a valid token (ops.py)."""
        auth = await tokens.current()
        return auth.enabled and auth.identify(request.headers.get("Authorization")) is not None

    _install_common(app, ctx)
    app.register_blueprint(api_routes(ctx, services))
    app.register_blueprint(audit_routes(ctx, services))
    app.register_blueprint(event_routes(ctx, services))
    app.register_blueprint(output_routes(ctx, services))
    app.register_blueprint(alert_routes(ctx, services))
    app.register_blueprint(stats_routes(ctx, services))
    app.register_blueprint(seed_routes(ctx, services))
    app.register_blueprint(ops.ops_routes(ctx, services, has_valid_token))
    app.register_blueprint(static.ui_routes(ctx.config.webapp_path))
    return app


def create_metrics_app(ctx: MasterContext) -> QuartTrio:
    """/metrics alone, unauthenticated: for the optional ``metrics_port`` listener."""
    app = _bare_app(ctx.config)
    app.before_request(browser_guard.guard_hook(ctx.config))
    _install_common(app, ctx)
    app.register_blueprint(ops.metrics_only_routes(ctx))
    return app


def _bare_app(config: Config) -> QuartTrio:
    app = QuartTrio("master", static_folder=None)
    # Never answer with werkzeug's HTML redirects: ``//`` is not merged, and no rule but
    # ``/`` ends in a slash (so ``/x`` is never sent to ``/x/``). Every answer is one
    # the OpenAPI document describes.
    app.url_map.merge_slashes = False
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        BODY_TIMEOUT=config.api_read_timeout_s,  # to receive the whole body
        RESPONSE_TIMEOUT=config.api_write_timeout_s,  # to send the whole response
        PROVIDE_AUTOMATIC_OPTIONS=False,  # an OPTIONS would be an empty 200
    )
    return app


def _install_common(app: QuartTrio, ctx: MasterContext) -> None:
    metrics = ctx.metrics

    @app.after_request
    async def finish(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        if request.endpoint not in static.PUBLIC_ENDPOINTS:
            response.headers["Cache-Control"] = "no-store"
        if response.status_code >= 400 and _has_body():
            # Refused early (auth, size, type), the body may be unread: the connection
            # cannot carry another request, so say so rather than drop it silently.
            response.headers["Connection"] = "close"
        route = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
        metrics.http_requests.labels(method_label(request.method), route,
                                     str(response.status_code)).inc()
        return response

    @app.errorhandler(ApiError)
    async def on_api_error(error: ApiError) -> Response:
        return api_error(error, request.path)

    @app.errorhandler(HTTPException)
    async def on_http_error(error: HTTPException) -> Response:
        return api_error(_from_werkzeug(error, app), request.path)

    @app.errorhandler(Exception)
    async def on_crash(error: Exception) -> Response:
        log.error("%s %s failed", request.method, request.path, exc_info=error)
        return api_error(Internal(), request.path)


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get(
        "Transfer-Encoding", "").lower()


def _from_werkzeug(error: HTTPException, app: QuartTrio) -> ApiError:
    method, path = request.method, request.path
    match error.code:
        case 404:
            return RouteNotFound(method, path)
        case 405:
            return MethodNotAllowed(method, path, sorted(getattr(error, "valid_methods", None)
                                                         or []))
        case 413:
            return PayloadTooLarge(MAX_BODY_BYTES)
        case 415:
            return UnsupportedMediaType(request.content_type or "none", "application/json")
        case 408:
            return BadRequest("body", f"not received within {app.config['BODY_TIMEOUT']:g} s")
        case code if code is not None and 400 <= code < 500:
            return BadRequest("request", error.description or "malformed request")
        case _:
            log.error("%s %s: HTTP error %s", method, path, error.code, exc_info=error)
            return Internal()
