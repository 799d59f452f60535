"""The web UI's files (``webapp_dir``): ``/`` is index.html, top-level assets are
served at the root (``/app.js``, what index.html links) and anything below the
directory at ``/static/<path>``. No auth: the files hold no data; the UI then asks
the user for the API token.

Only regular files inside the directory, no dot-files, paths of at most
``MAX_PATH_CHARS``; anything else, and anything the OS refuses to look up (a name too
long, odd bytes), is a 404, never a 500. Content types are fixed here
(module scripts need a JavaScript type; nosniff forbids guessing), and the app adds
the strict Content-Security-Policy to every response.
"""

from __future__ import annotations

import logging
from pathlib import Path

import trio
from quart import Blueprint, Response
from werkzeug.routing import BaseConverter
from werkzeug.security import safe_join

from .errors import NotFound

__all__ = ["AssetConverter", "CONTENT_TYPES", "MAX_PATH_CHARS", "PUBLIC_ENDPOINTS", "ui_routes"]

log = logging.getLogger(__name__)

MAX_PATH_CHARS = 1024  # far beyond the UI's own files, far below the OS's PATH_MAX

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}
PUBLIC_ENDPOINTS = frozenset({"ui.index", "ui.asset", "ui.static_file"})


class AssetConverter(BaseConverter):
    """One path segment naming a UI file by a known extension (``app.js``), so the
    root-level route never shadows API paths or answers 405 for them."""

    regex = r"[A-Za-z0-9_-][A-Za-z0-9_.-]*\.(?:html|m?js|css|svg|png|ico|map|txt|woff2)"


def ui_routes(webapp_dir: Path) -> Blueprint:
    bp = Blueprint("ui", __name__)
    root = Path(webapp_dir).absolute()

    async def serve(relative: str) -> Response:
        missing = NotFound(f"no file {relative[:200]!r} in the web UI ({webapp_dir})")
        path = safe_join(str(root), relative) if len(relative) <= MAX_PATH_CHARS else None
        hidden = any(part.startswith(".") for part in Path(relative).parts)
        if path is None or hidden or not await _is_file(path):
            raise missing
        content_type = CONTENT_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")
        try:
            data = await trio.Path(path).read_bytes()
        except OSError as exc:  # unreadable (its mode, a deploy under way): the log says why
            log.warning("web UI file %s cannot be read: %s", path, exc.strerror or exc)
            raise missing from None
        return Response(data, content_type=content_type, headers={"Cache-Control": "no-cache"})

    @bp.get("/")
    async def index() -> Response:
        return await serve("index.html")

    @bp.get("/<asset:asset>")
    async def asset(asset: str) -> Response:
        return await serve(asset)

    @bp.get("/static/<path:path>")
    async def static_file(path: str) -> Response:
        return await serve(path)

    return bp


async def _is_file(path: str) -> bool:
    try:
        return await trio.Path(path).is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte: no such file here
        return False
