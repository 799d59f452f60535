"""Each field of a job spec: its bounds, its value types and its validator.

Every validator takes the value as it came (JSON or Python), raises SpecError naming
the JSON field, and returns the value normalised (an int for an integral number of
seconds, a FrozenStrMap for a mapping, a Concurrency for its string).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum
from typing import Final, TypeVar

from ..keyspace import JOB_NAME_RE
from ._errors import SpecError

__all__ = ["ENV_NAME_RE", "LABEL_KEY_RE", "MAX_COMMAND_BYTES", "MAX_CREATED_AT_MS",
           "MAX_DOCUMENT_BYTES", "MAX_ENV_BYTES", "MAX_ENV_ENTRIES", "MAX_LABEL_VALUE_CHARS",
           "MAX_NAME_CHARS", "MAX_RETRIES", "MAX_RETRY_BACKOFF_S", "MAX_SELECTOR_ENTRIES",
           "MAX_CATCHUP_FIRES", "MAX_STARTING_DEADLINE_S", "MAX_TIMEOUT_S", "USER_NAME_RE",
           "CatchUp", "Concurrency", "FrozenStrMap"]

MAX_NAME_CHARS: Final = 128
MAX_COMMAND_BYTES: Final = 64 * 1024
MAX_DOCUMENT_BYTES: Final = 256 * 1024
MAX_TIMEOUT_S: Final = 30 * 86_400
MAX_RETRIES: Final = 100
MAX_RETRY_BACKOFF_S: Final = 86_400  # also the cap of the doubling wait between retries
MAX_STARTING_DEADLINE_S: Final = 30 * 86_400
MAX_CATCHUP_FIRES: Final = 100  # catchUp "all": the most fires one outage runs again
MAX_CREATED_AT_MS: Final = 2**53
MAX_SELECTOR_ENTRIES: Final = 32
MAX_ENV_ENTRIES: Final = 128
MAX_ENV_BYTES: Final = 64 * 1024
LABEL_KEY_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,62}", re.ASCII)
ENV_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}", re.ASCII)
MAX_LABEL_VALUE_CHARS: Final = 255
# POSIX portable user names (useradd's rule), as the worker's --run-as takes them.
USER_NAME_RE: Final = re.compile(r"[a-z_][a-z0-9_-]{0,31}\$?", re.ASCII)


class Concurrency(StrEnum):
    """What a fire does while the job's previous run is still going."""

    ALLOW = "allow"  # run in parallel
    FORBID = "forbid"  # skip this fire
    REPLACE = "replace"  # kill the running one, then run


_Choice = TypeVar("_Choice", bound=StrEnum)


class CatchUp(StrEnum):
    """What a job does with the fires it missed while no worker could run them."""

    LAST = "last"  # run once, for the most recent missed fire (the record counts them)
    ALL = "all"  # run each missed fire, in order, at most MAX_CATCHUP_FIRES


class FrozenStrMap(Mapping[str, str]):
    """An immutable, hashable str -> str mapping (selector, env)."""

    __slots__ = ("_data",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._data: dict[str, str] = dict(items)

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return f"FrozenStrMap({self._data!r})"


_EMPTY: Final = FrozenStrMap()



# --------------------------------------------------------------------------- validators

def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _expect(value: object, kind: type, field_name: str, expected: str) -> None:
    if type(value) is kind:  # the common case, without isinstance's abc machinery
        return
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SpecError(field_name, f"expected {expected}, got {_json_type(value)}")


def _check_name(name: object) -> None:
    _expect(name, str, "name", "a string")
    assert isinstance(name, str)
    if not name:
        raise SpecError("name", "must not be empty")
    if len(name) > MAX_NAME_CHARS:
        raise SpecError("name", f"at most {MAX_NAME_CHARS} characters, got {len(name)}")
    if JOB_NAME_RE.fullmatch(name) is None:
        raise SpecError("name", f"must match ^{JOB_NAME_RE.pattern}$ (letters, digits, "
                        f"'.', '_', '-'; no '/'; not starting with '.'), got {name!r}")


def _check_command(command: object) -> None:
    _expect(command, str, "command", "a string")
    assert isinstance(command, str)
    if not command.strip():
        raise SpecError("command", "must not be empty")
    if "\0" in command:
        raise SpecError("command", "must not contain NUL characters")
    size = _utf8_size(command, "command")
    if size > MAX_COMMAND_BYTES:
        raise SpecError("command", f"at most {MAX_COMMAND_BYTES} bytes, got {size}")


def _utf8_size(text: str, field_name: str) -> int:
    """UTF-8 length; lone surrogates (possible in JSON `\\ud800`) cannot be stored."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise SpecError(field_name, "must be valid Unicode (no lone surrogates)") from None


def _check_user(user: object) -> None:
    _expect(user, str, "user", "a string or null")
    assert isinstance(user, str)
    if USER_NAME_RE.fullmatch(user) is None:
        raise SpecError("user", f"must be a user name matching ^{USER_NAME_RE.pattern}$, "
                        f"got {user!r}")


def _seconds(value: object, field_name: str, maximum: int) -> float:
    """A non-negative duration in seconds; integral values are kept as int."""
    if not (type(value) is int or type(value) is float):
        raise SpecError(field_name, f"expected a number of seconds, got {_json_type(value)}")
    if (isinstance(value, float) and not math.isfinite(value)) or not 0 <= value <= maximum:
        raise SpecError(field_name, f"must be between 0 and {maximum} seconds, got {value}")
    return int(value) if float(value).is_integer() else float(value)


def _count(value: object, field_name: str, maximum: int) -> None:
    _expect(value, int, field_name, "an integer")
    assert isinstance(value, int)
    if not 0 <= value <= maximum:
        raise SpecError(field_name, f"must be between 0 and {maximum}, got {value}")


def _choice(value: object, enum: type[_Choice], field_name: str, choices: str) -> _Choice:
    """A string field with a fixed set of values, as its enum member."""
    if type(value) is enum:
        return value  # type: ignore[return-value]
    _expect(value, str, field_name, "a string")
    assert isinstance(value, str)
    try:
        return enum(value)
    except ValueError:
        raise SpecError(field_name, f"must be {choices}, got {value!r}") from None


def _concurrency(value: object) -> Concurrency:
    return _choice(value, Concurrency, "concurrency", "allow, forbid or replace")


def _catch_up(value: object) -> CatchUp:
    return _choice(value, CatchUp, "catchUp", "last or all")


def _string_map(value: object, field_name: str, max_entries: int) -> FrozenStrMap:
    if not value and type(value) in (dict, FrozenStrMap):
        return _EMPTY
    if type(value) is not dict:
        _expect(value, Mapping, field_name, "an object of strings")
    assert isinstance(value, Mapping)
    if len(value) > max_entries:
        raise SpecError(field_name, f"at most {max_entries} entries, got {len(value)}")
    for key, item in value.items():
        if type(key) is not str or type(item) is not str:
            raise SpecError(field_name, f"entry {key!r}: expected a string, got "
                            f"{_json_type(item if isinstance(key, str) else key)}")
    return value if isinstance(value, FrozenStrMap) else FrozenStrMap(value)


def _selector(value: object) -> FrozenStrMap:
    labels = _string_map(value, "selector", MAX_SELECTOR_ENTRIES)
    for key, item in labels.items():
        if LABEL_KEY_RE.fullmatch(key) is None:
            raise SpecError("selector", f"label {key!r} must match ^{LABEL_KEY_RE.pattern}$")
        _utf8_size(item, "selector")
        if len(item) > MAX_LABEL_VALUE_CHARS or not item.isprintable():
            raise SpecError("selector", f"label {key!r}: value must be printable and at "
                            f"most {MAX_LABEL_VALUE_CHARS} characters")
    return labels


def _env(value: object) -> FrozenStrMap:
    env = _string_map(value, "env", MAX_ENV_ENTRIES)
    size = 0
    for key, item in env.items():
        if ENV_NAME_RE.fullmatch(key) is None:
            raise SpecError("env", f"name {key!r} must match ^{ENV_NAME_RE.pattern}$")
        if "\0" in item:
            raise SpecError("env", f"{key}: value must not contain NUL characters")
        size += len(key) + _utf8_size(item, "env") + 2
    if size > MAX_ENV_BYTES:
        raise SpecError("env", f"at most {MAX_ENV_BYTES} bytes in all, got {size}")
    return env
