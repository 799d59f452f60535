"""The API's error tree: each error knows its HTTP status, its code and its sentence.

Handlers and actors raise these; the app renders every one as
``{"error": {"code", "message", "field"?}}`` (or the seed envelope on seed paths).
Nothing else reaches a client: werkzeug's own HTTP errors are mapped onto this tree,
and anything unexpected becomes ``Internal`` with its traceback in the log only::

    ApiError ................... status, code, message, field (None unless a field is at fault)
     ├── BadRequest ............ 400 bad_request: field + reason ("cronExpr: ...")
     ├── Unauthorized .......... 401 unauthorized: missing or wrong token (one message: no oracle)
     ├── CrossOriginRefused .... 403 cross_origin: a state-changing request from another origin
     ├── Forbidden ............. 403 forbidden: the token's role may not do this
     ├── NotFound .............. 404 not_found
     │    ├── JobNotFound
     │    ├── RunNotFound
     │    └── RouteNotFound .... no endpoint at that path (also missing UI files)
     ├── MethodNotAllowed ...... 405 method_not_allowed
     ├── Conflict .............. 409 conflict
     │    ├── EditConflict ..... the job kept changing under our transaction
     │    └── InvalidStoredJob . what etcd holds under jobs/<name> is not a valid spec
     ├── PayloadTooLarge ....... 413 payload_too_large
     ├── UnsupportedMediaType .. 415 unsupported_media_type
     ├── MisdirectedRequest .... 421 misdirected_request: a Host the master does not serve
     ├── ChainCycle ............ 422 chain_cycle: ``after`` would close a cycle of jobs
     ├── Unavailable ........... 503 unavailable: names the dependency
     │    ├── EtcdDown
     │    ├── StoreDown
     │    └── ShuttingDown
     └── Internal .............. 500 internal: a generic sentence, never the cause
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ApiError", "BadRequest", "ChainCycle", "Conflict", "CrossOriginRefused", "EditConflict",
    "EtcdDown",
    "Forbidden", "Internal", "InvalidStoredJob", "JobNotFound", "MethodNotAllowed",
    "MisdirectedRequest", "NoQuorum", "NotFound", "PayloadTooLarge", "RouteNotFound", "RunNotFound",
    "ShuttingDown", "StoreDown", "Unauthorized", "Unavailable", "UnsupportedMediaType",
]

_MAX_DETAIL_CHARS = 300  # a dependency's own message can be long; a sentence is enough


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL_CHARS else text[: _MAX_DETAIL_CHARS - 3] + "..."


class ApiError(Exception):
    """Base of every error the API answers on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return {"error": body}


class BadRequest(ApiError):
    status, code = 400, "bad_request"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", field=field)
        self.reason = reason


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"

    def __init__(self) -> None:
        super().__init__("a valid bearer token is required (Authorization: Bearer <token>)")


class CrossOriginRefused(ApiError):
    """A browser sent a write from a page of another origin (browser_guard.py)."""

    status, code = 403, "cross_origin"

    def __init__(self, method: str, source: str) -> None:
        super().__init__(f"refused {_clip(method)} from {_clip(source)}: state-changing "
                         f"requests are taken from the master's own origin only "
                         f"(behind a proxy, set --public-url)")


class Forbidden(ApiError):
    status, code = 403, "forbidden"

    def __init__(self, token: str, role: str, required: str) -> None:
        super().__init__(f"token {token!r} has role {role}; this needs role {required}")
        self.token = token
        self.role = role
        self.required = required


class NotFound(ApiError):
    status, code = 404, "not_found"


class JobNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"no job named {name!r}")
        self.name = name


class RunNotFound(NotFound):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id {_clip(run_id)!r}")
        self.run_id = run_id


class RouteNotFound(NotFound):
    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"nothing at {_clip(method)} {_clip(path)}")


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"

    def __init__(self, method: str, path: str, allowed: list[str]) -> None:
        super().__init__(f"{_clip(method)} is not allowed on {_clip(path)}; allowed: "
                         f"{', '.join(allowed) or 'none'}")
        self.allowed = allowed


class Conflict(ApiError):
    status, code = 409, "conflict"


class EditConflict(Conflict):
    def __init__(self, name: str, attempts: int) -> None:
        super().__init__(f"job {name!r} changed concurrently {attempts} times in a row; "
                         f"read it again and retry")


class InvalidStoredJob(Conflict):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"the stored job {name!r} is not a valid spec ({_clip(reason)}); "
                         f"save a valid one over it or delete it")


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"the request body is larger than {limit_bytes} bytes")


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"

    def __init__(self, got: str, expected: str) -> None:
        super().__init__(f"expected a {expected} body, got Content-Type {_clip(got)!r}")


class MisdirectedRequest(ApiError):
    """A Host header naming no name the master serves: DNS rebinding (browser_guard.py)."""

    status, code = 421, "misdirected_request"

    def __init__(self, host: str) -> None:
        super().__init__(f"this master does not answer to Host {_clip(host)!r}: list the "
                         f"name in --allowed-hosts, or set --public-url")


class ChainCycle(ApiError):
    """The job is valid alone, but with the jobs stored its ``after`` closes a cycle."""

    status, code = 422, "chain_cycle"

    def __init__(self, message: str) -> None:
        super().__init__(message, field="after")


class Unavailable(ApiError):
    status, code = 503, "unavailable"


class EtcdDown(Unavailable):
    def __init__(self, detail: str) -> None:
        super().__init__(f"etcd is unreachable: {_clip(detail)}")


class NoQuorum(EtcdDown):
    """etcd's members answer, but none has a leader: a majority is down or cut off."""

    def __init__(self) -> None:
        ApiError.__init__(self, "etcd: no quorum (its members answer, but none has a "
                                "leader): no change is saved and the worker list may be "
                                "stale until it is back")


class StoreDown(Unavailable):
    def __init__(self, detail: str) -> None:
        super().__init__(f"the run store is unreachable: {_clip(detail)}")


class ShuttingDown(Unavailable):
    def __init__(self) -> None:
        super().__init__("the master is shutting down")


class Internal(ApiError):
    status, code = 500, "internal"

    def __init__(self) -> None:
        super().__init__("internal error; the master's log has the details")
