"""The table: one `Setting` row per field of Config, and the validation it drives.

`SETTINGS` is compiled from `ConfigFields` (each field's metadata and type hint) and
drives every source (file, environment, flags) and `validate`, which checks the values
of all the sources merged, each with where it came from, so that an error names it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

from ._errors import BadValue, InconsistentValues, Source
from ._fields import META, ConfigFields, Meta
from ._kinds import Setting, type_reason
from ._labels import Labels
from ._urls import MysqlUrl, parse_db_url

ENV_PREFIX = "SCHEDULER_"

Role = Literal["master", "worker"]

_KINDS: dict[object, str] = {str: "str", int: "int", float: "float", bool: "bool",
                             tuple[str, ...]: "strs", Labels: "labels"}
_METAVARS = {"str": "TEXT", "int": "N", "float": "SECONDS", "bool": "BOOL",
             "strs": "A,B,...", "labels": "K=V,..."}


def _compile_settings() -> tuple[Setting, ...]:
    hints = typing.get_type_hints(ConfigFields, localns={"Labels": Labels})
    rows = []
    for f in dataclasses.fields(ConfigFields):
        meta: Meta = f.metadata[META]
        base, optional = _unwrap_optional(hints[f.name])
        kind = _KINDS[base]
        assert not meta.seed_ms or kind == "float", f"{f.name}: ms seed keys need a float"
        rows.append(Setting(
            name=f.name, kind=kind, optional=optional,  # type: ignore[arg-type]
            default=f.default, help=meta.help,
            flag=meta.flag or "--" + f.name.replace("_", "-"),
            env=ENV_PREFIX + f.name.upper(), seed_keys=meta.seed, seed_ms=meta.seed_ms,
            check=meta.check, used_by=meta.used_by,
            metavar=meta.metavar or _METAVARS[kind], secret=meta.secret))
    return tuple(rows)


def _unwrap_optional(hint: object) -> tuple[object, bool]:
    if isinstance(hint, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        assert len(args) == 1, hint
        return args[0], True
    return hint, False


SETTINGS: tuple[Setting, ...] = _compile_settings()
BY_NAME = {s.name: s for s in SETTINGS}

# Values by field name, each with where it came from: one source, or all of them merged.
Layer = dict[str, tuple[object, Source]]


def validate(values: Layer) -> None:
    """Type and range of each value, then the rules that tie fields together."""
    for name, (value, source) in values.items():
        setting = BY_NAME[name]
        reason = type_reason(setting, value)
        if reason is None and value is not None and setting.check:
            reason = setting.check(value)
        if reason:
            raise BadValue(name, source, reason)
    _validate_together(values)


def _validate_together(values: Layer) -> None:
    def get(name: str) -> Any:
        return values[name][0]

    def fail(reason: str, *names: str) -> None:
        raise InconsistentValues(reason, {n: values[n][1] for n in names})

    # A lock must outlive the widest skew, or a late worker could re-claim a fire (§6).
    if get("lock_ttl_s") <= get("max_clock_skew_s"):
        fail(f"lock_ttl_s ({get('lock_ttl_s')}) must exceed max_clock_skew_s "
             f"({get('max_clock_skew_s')})", "lock_ttl_s", "max_clock_skew_s")
    # TLS settings for MySQL over another store would be ignored without a word.
    url = None if get("db_url") is None else parse_db_url(get("db_url"))
    if get("db_ca_file") is not None and not isinstance(url, MysqlUrl):
        fail("db_ca_file is set but the run store is not MySQL (db_url)",
             "db_ca_file", "db_url")
    if isinstance(url, MysqlUrl) and url.cert_file and not (url.ca_file
                                                            or get("db_ca_file")):
        fail("db_url's ssl-cert needs a CA to verify the server with (ssl-ca or "
             "db_ca_file): a client certificate goes only to a verified server",
             "db_url", "db_ca_file")
    # etcd's client certificate is a pair; its user needs a password (one without a
    # user is not used).
    if (get("etcd_cert_file") is None) != (get("etcd_key_file") is None):
        fail("etcd_cert_file and etcd_key_file go together: set both or neither",
             "etcd_cert_file", "etcd_key_file")
    if get("etcd_user") is not None and get("etcd_password") is None:
        fail("etcd_user needs its password (SCHEDULER_ETCD_PASSWORD or "
             "etcd_password_file)", "etcd_user", "etcd_password")
    if get("job_log_batch_size") > get("sink_memory_records"):
        fail(f"job_log_batch_size ({get('job_log_batch_size')}) cannot exceed "
             f"sink_memory_records ({get('sink_memory_records')})",
             "job_log_batch_size", "sink_memory_records")
