"""Where a setting came from, and the errors that name it.

Every message names the setting and its source; the command lines print `str(error)`
and exit 2, never a traceback:

    ConfigError
     ├── ConfigFileError       the file is missing, unreadable, not JSON, not an object
     ├── UnknownKey            a file key / SCHEDULER_* variable / flag name we do not
     │                         know, with the closest known name (difflib)
     ├── DuplicateKey          one setting given twice in one source
     ├── BadValue              wrong type or out of range
     ├── InconsistentValues    valid values that contradict each other
     ├── BadDbUrl              parse_db_url: wrong scheme or shape
     └── BadEndpoint           parse_endpoint: not host:port
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from ._redact import redact_db_url


@dataclass(frozen=True)
class Source:
    """Where one value came from, in the words the user typed it."""

    kind: Literal["default", "file", "env", "flag", "code"]
    key: str  # as written there: "apiPort", "SCHEDULER_API_PORT", "--port", "api_port"
    path: str | None = None  # the file, for kind == "file"

    def __str__(self) -> str:
        match self.kind:
            case "file":
                return f'key "{self.key}" in {self.path}'
            case "env":
                return f"environment variable {self.key}"
            case "flag":
                return f"flag {self.key}"
            case "code":
                return f"Config({self.key}=...)"
            case _:
                return f"the default of {self.key}"


class ConfigError(Exception):
    """Base of all configuration errors; `str(error)` is a complete user-facing sentence."""


class ConfigFileError(ConfigError):
    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"config file {path}: {reason}")


class UnknownKey(ConfigError):
    """`source.key` is none of `known`; the message offers the closest known name."""

    def __init__(self, source: Source, known: Iterable[str]) -> None:
        self.source, self.suggestion = source, _closest(source.key, list(known))
        hint = f' (did you mean "{self.suggestion}"?)' if self.suggestion else ""
        super().__init__(f"unknown setting: {source}{hint}")


def _closest(key: str, known: list[str]) -> str | None:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if not close:  # case slips ("APIPORT", "Api_Port") deserve a hint too
        lowered = {k.lower(): k for k in known}
        close = [lowered[m] for m in difflib.get_close_matches(key.lower(), list(lowered), n=1)]
    return close[0] if close else None


class DuplicateKey(ConfigError):
    def __init__(self, field: str, first: Source, second: Source) -> None:
        self.field, self.first, self.second = field, first, second
        where = str(first) if first == second else f"{first} and {second}"
        super().__init__(f"{field} is given twice: {where}; keep one")


class BadValue(ConfigError):
    def __init__(self, field: str, source: Source, reason: str) -> None:
        self.field, self.source, self.reason = field, source, reason
        super().__init__(f"bad value for {field} ({source}): {reason}")


class InconsistentValues(ConfigError):
    def __init__(self, reason: str, sources: Mapping[str, Source]) -> None:
        self.reason, self.sources = reason, dict(sources)
        origins = "; ".join(f"{name} from {src}" for name, src in sources.items())
        super().__init__(f"inconsistent settings: {reason} ({origins})")


class BadDbUrl(ConfigError):
    _SHAPES = ("mysql://user@host:port/dbname (query keys for TLS: ssl-ca, "
               "ssl-verify-identity, ssl-cert, ssl-key), sqlite:///relative/path.db "
               "or sqlite:////absolute/path.db")

    def __init__(self, url: str, reason: str) -> None:
        self.url, self.reason = redact_db_url(url), f"{reason}; expected {self._SHAPES}"
        super().__init__(f"bad database URL {self.url!r}: {self.reason}")


class BadEndpoint(ConfigError):
    def __init__(self, text: str) -> None:
        self.text = text
        self.reason = f"{text!r} is not host:port (IPv6 as [addr]:port, port 1..65535)"
        super().__init__(f"bad etcd endpoint: {self.reason}")
