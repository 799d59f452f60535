"""The master's API over httpx: JSON in, JSON out, every failure a CliError.

Transport failures (refused, DNS, timeout, a broken reply) are ConnectError; an error
answer's envelope `{"error": {code, message, field?}}` is ApiError (AuthError on 401);
a URL httpx cannot use is UsageError.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final
from urllib.parse import quote

import httpx

from ._errors import ApiError, AuthError, ConnectError, UsageError
from ._format import cell, one_line

ClientFactory = Callable[..., httpx.Client]

_ERRNO_RE: Final = re.compile(r"^\[Errno -?\d+\]\s*")


class Api:
    """The master's API over one httpx client: JSON in, JSON out, errors as CliError."""

    def __init__(self, client: httpx.Client, url: str, timeout_s: float) -> None:
        self._client = client
        self._url = url
        self._timeout_s = timeout_s

    def call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
             body: Any = None) -> tuple[int, Any]:
        """(status, decoded JSON) of a 2xx answer; raises the matching CliError otherwise."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._client.request(method, path, params=clean, json=body)
        except httpx.UnsupportedProtocol:
            raise UsageError(f"--url {self._url!r} is not an http:// or https:// URL") from None
        except httpx.InvalidURL as err:
            raise UsageError(f"--url {self._url!r} is invalid: {err}") from None
        except httpx.RequestError as err:  # refused, DNS, timeout, broken or odd reply
            raise ConnectError(self._url, _transport_reason(err, self._timeout_s)) from None
        return response.status_code, _decode(response)

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params)[1]

    @contextmanager
    def stream(self, path: str, *, params: Mapping[str, Any], headers: Mapping[str, str],
               read_timeout_s: float) -> Iterator[Iterator[str]]:
        """A GET whose body is read as it comes (an event stream): its text chunks.
        An error answer raises as in ``call``; a transport failure before or while
        reading is ConnectError (``read_timeout_s``: silence for that long is one)."""
        timeout = httpx.Timeout(self._timeout_s, read=read_timeout_s)
        try:
            with self._client.stream("GET", path, params=dict(params), headers=dict(headers),
                                     timeout=timeout) as response:
                if not 200 <= response.status_code < 300:
                    response.read()
                    _decode(response)  # raises the error it holds
                yield _chunks(response, self._url, read_timeout_s)
        except httpx.UnsupportedProtocol:
            raise UsageError(f"--url {self._url!r} is not an http:// or https:// URL") from None
        except httpx.InvalidURL as err:
            raise UsageError(f"--url {self._url!r} is invalid: {err}") from None
        except httpx.RequestError as err:
            raise ConnectError(self._url, _transport_reason(err, self._timeout_s)) from None


def _chunks(response: httpx.Response, url: str, read_timeout_s: float) -> Iterator[str]:
    try:
        yield from response.iter_text()
    except httpx.ReadTimeout:
        raise ConnectError(url, f"the stream was silent for {read_timeout_s:g} s") from None
    except httpx.RequestError as err:
        raise ConnectError(url, f"the stream broke: {type(err).__name__}") from None


def api_path(*segments: str) -> str:
    """An /api/v1 path with each segment percent-encoded (names are one segment)."""
    return "/api/v1/" + "/".join(quote(s, safe="") for s in segments)


def _transport_reason(err: httpx.RequestError, timeout_s: float) -> str:
    if isinstance(err, httpx.ConnectTimeout):
        return f"connection timed out after {timeout_s:g} s"
    if isinstance(err, httpx.TimeoutException):
        return f"no answer within {timeout_s:g} s"
    if isinstance(err, httpx.ConnectError):
        return _ERRNO_RE.sub("", one_line(str(err))) or "connection refused"
    return f"{type(err).__name__}: {one_line(str(err))}"


def _decode(response: httpx.Response) -> Any:
    """The JSON of a success; the error envelope of a failure turned into ApiError."""
    try:
        data = response.json()
    except ValueError:
        data = None
    status = response.status_code
    if 200 <= status < 300:
        if data is None:
            raise ApiError(status, "bad_answer", "the master answered something not JSON")
        return data
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        error = {"code": "http_error", "message": response.reason_phrase or "no JSON error"}
    field = error.get("field")
    cls = AuthError if status == 401 else ApiError
    raise cls(status, cell(error.get("code", "error")), cell(error.get("message", "")),
              cell(field) if isinstance(field, str) else None)
