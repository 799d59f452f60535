"""Reading what a client sent: names, query parameters, JSON and form bodies.

Every function raises an ``ApiError`` whose message names the offending field, so
handlers stay straight-line. Limits and rules are the cluster's own (job names are
one etcd key segment, specs are validated by ``JobSpec``); nothing here re-decides
them, it only says which part of the request was wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from quart import Request

from cluster.keyspace import ID_RE, JOB_NAME_RE, is_valid_job_name
from cluster.spec import JobSpec, SpecError
from cluster.store import RunStatus

from .errors import BadRequest, UnsupportedMediaType

__all__ = [
    "MAX_BODY_BYTES", "check_job_name", "check_run_id", "form_field", "job_from_document",
    "query_int", "query_statuses", "read_json_object",
]

MAX_BODY_BYTES = 256 * 1024
MAX_NAME_CHARS = 128
MAX_SAFE_INT = 2**53  # JSON numbers clients can hold exactly
_INTEGER = re.compile(r"-?[0-9]{1,19}", re.ASCII)
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_STATUS_VALUES = tuple(s.value for s in RunStatus)
_STATUSES = ", ".join(_STATUS_VALUES)


def check_job_name(name: object, field: str = "name") -> str:
    if not isinstance(name, str):
        raise BadRequest(field, "expected a string")
    if not name:
        raise BadRequest(field, "must not be empty")
    if len(name) > MAX_NAME_CHARS:
        raise BadRequest(field, f"at most {MAX_NAME_CHARS} characters, got {len(name)}")
    if not is_valid_job_name(name):
        raise BadRequest(field, f"must match ^{JOB_NAME_RE.pattern}$ (letters, digits, '.', "
                                f"'_', '-'; no '/'; not starting with '.'), got {name!r}")
    return name


def check_run_id(run_id: object, field: str = "runId") -> str:
    if not isinstance(run_id, str) or ID_RE.fullmatch(run_id) is None:
        raise BadRequest(field, f"must be a run id matching ^{ID_RE.pattern}$")
    return run_id


# ---------------------------------------------------------------- query parameters


def query_int(args: Mapping[str, str], name: str, *, default: int | None, low: int,
              high: int) -> int | None:
    raw = args.get(name)
    if raw is None:
        return default
    if _INTEGER.fullmatch(raw) is None:
        raise BadRequest(name, f"expected an integer, got {raw[:40]!r}")
    value = int(raw)
    if not low <= value <= high:
        raise BadRequest(name, f"must be between {low} and {high}, got {value}")
    return value


def query_statuses(args: Mapping[str, str], name: str = "status") -> tuple[str, ...]:
    """``status=failed`` or ``status=failed,timeout``; empty tuple when absent."""
    raw = args.get(name)
    if raw is None:
        return ()
    wanted = tuple(part.strip() for part in raw.split(","))
    for status in wanted:
        if status not in _STATUS_VALUES:
            raise BadRequest(name, f"must be one or more of {_STATUSES} (comma-separated), "
                                   f"got {status[:40]!r}")
    return wanted


# ---------------------------------------------------------------- bodies


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_object(data: bytes | str, field: str) -> dict[str, Any]:
    try:
        text = data if isinstance(data, str) else data.decode("utf-8")
        document = json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise BadRequest(field, "not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(field, f"invalid JSON: {exc.msg} at line {exc.lineno} column "
                                f"{exc.colno}") from None
    except RecursionError:
        raise BadRequest(field, "invalid JSON: nested too deeply") from None
    except ValueError as exc:
        raise BadRequest(field, f"invalid JSON: {exc}") from None
    if not isinstance(document, dict):
        kind = "an array" if isinstance(document, list) else type(document).__name__
        raise BadRequest(field, f"expected a JSON object, got {kind}")
    return document


async def read_json_object(request: Request, *, field: str,
                           required: bool = True) -> dict[str, Any] | None:
    """The JSON object in the body; None for no body when not ``required``.

    Too large: werkzeug's RequestEntityTooLarge (413) from ``get_data``.
    """
    content_type = request.headers.get("Content-Type")
    if content_type is not None and request.mimetype != "application/json":
        raise UnsupportedMediaType(content_type, "application/json")
    data = await request.get_data(cache=True)
    if not data:
        if required:
            raise BadRequest(field, "a JSON object body is required")
        return None
    if content_type is None:
        raise UnsupportedMediaType("none", "application/json")
    return parse_json_object(data, field)


async def form_field(request: Request, name: str) -> str:
    """A field of a form body (the seed's endpoints post forms)."""
    content_type = request.headers.get("Content-Type")
    if content_type is not None and request.mimetype not in _FORM_TYPES:
        raise UnsupportedMediaType(content_type, " or ".join(_FORM_TYPES))
    form = await request.form
    value = form.get(name)
    if value is None:
        raise BadRequest(name, "form field is required")
    return value


def job_from_document(document: Mapping[str, Any], path_name: str | None = None) -> JobSpec:
    """Validate a spec; ``path_name`` (the URL's) must equal the body's name, if any."""
    doc = dict(document)
    if path_name is not None:
        if "name" in doc and doc["name"] != path_name:
            raise BadRequest("name", f"must equal the name in the path ({path_name!r}), "
                                     f"got {str(doc['name'])[:140]!r}")
        doc["name"] = path_name
    try:
        return JobSpec.from_json(doc)
    except SpecError as exc:
        raise BadRequest(exc.field, exc.reason) from None
