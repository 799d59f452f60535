"""Reading a JSON config file as the seed writes them: `//` line comments allowed.

The seed's example files carry `//` comments, so they are blanked out (outside JSON
strings, keeping every line and column so parse errors point at the right place).
A key given twice is refused rather than silently keeping the last one.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ._errors import ConfigFileError, DuplicateKey, Source
from ._kinds import json_type

_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|//[^\n]*')


def strip_line_comments(text: str) -> str:
    """Blank out `//` comments outside JSON strings, keeping every line and column."""
    return _STRING_OR_COMMENT.sub(
        lambda m: m[0] if m[0].startswith('"') else " " * len(m[0]), text)


class _DuplicateJsonKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateJsonKey(key)
        out[key] = value
    return out


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def read_config_file(path: str | os.PathLike[str]) -> dict[str, object]:
    """The top-level object of a JSON config file (seed `//` comments allowed)."""
    where = os.fspath(path)
    try:
        text = Path(where).read_text(encoding="utf-8-sig")
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, NUL in the path
        raise ConfigFileError(where, f"cannot read it: {exc}") from None
    try:
        data = json.loads(strip_line_comments(text), object_pairs_hook=_no_duplicates,
                          parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ConfigFileError(where, f"line {exc.lineno} column {exc.colno}: {exc.msg}") \
            from None
    except _DuplicateJsonKey as exc:
        key = str(exc.args[0])
        source = Source("file", key, where)
        raise DuplicateKey(key, source, source) from None
    except ValueError as exc:
        raise ConfigFileError(where, str(exc)) from None
    if not isinstance(data, dict):
        raise ConfigFileError(where, f"expected a JSON object, got {json_type(data)}")
    return data
