"""How the API answers: JSON bodies, the seed's envelope, errors, security headers.

One JSON encoder for everything (keys in the order we build them, UTF-8, no NaN),
so a response body is exactly the dict the handler made.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from quart import Response

from .errors import ApiError, MethodNotAllowed, Unauthorized

__all__ = ["SECURITY_HEADERS", "api_error", "json_response", "is_seed_path", "seed_ok"]

JSON_TYPE = "application/json"
SEED_PREFIXES = ("/job/", "/worker/")

# Strict: the UI loads its own script and style only (no inline code, no CDN), so an
# injected <script> or a job name with markup cannot run (DESIGN §11).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def json_response(body: Any, status: int = 200) -> Response:
    data = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Response(data.encode("utf-8"), status=status, content_type=JSON_TYPE)


def is_seed_path(path: str) -> bool:
    return path.startswith(SEED_PREFIXES)


def seed_ok(data: Any, warnings: Sequence[str] = ()) -> Response:
    """The seed's success envelope; `warnings` only when there are some, so that the
    seed's clients see its exact shape otherwise."""
    body: dict[str, Any] = {"errno": 0, "msg": "success", "data": data}
    if warnings:
        body["warnings"] = list(warnings)
    return json_response(body)


def api_error(error: ApiError, path: str) -> Response:
    """The error as ``{"error": ...}``, or as the seed's envelope on seed paths."""
    if is_seed_path(path):
        body: dict[str, Any] = {"errno": error.status, "msg": error.message, "data": None}
    else:
        body = error.to_json()
    response = json_response(body, error.status)
    if isinstance(error, Unauthorized):
        response.headers["WWW-Authenticate"] = 'Bearer realm="scheduler"'
    if isinstance(error, MethodNotAllowed):
        response.headers["Allow"] = ", ".join(error.allowed)
    return response
