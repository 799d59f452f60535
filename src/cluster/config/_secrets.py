"""Secrets read from files, and the warning for secrets typed on a command line.

A flag is readable by every local user (`ps`, /proc/PID/cmdline), so each secret
also comes from the environment or from a file named by its `*_file` setting; the
file is read once, when the config is built, so a missing or empty file stops the
process at start-up with one line instead of failing its first request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ._errors import BadValue, InconsistentValues, Source
from ._table import BY_NAME, Layer

__all__ = ["SECRET_FILES", "SecretFileError", "read_secret_file", "read_secret_files",
           "secrets_in_flags"]

# secret setting -> the setting naming a file that holds it
SECRET_FILES: Mapping[str, str] = {
    "api_token": "api_token_file",
    "etcd_password": "etcd_password_file",
    "db_password": "db_password_file",
}
# A file bigger than this is not a password: refuse it rather than read a disk image.
_MAX_SECRET_BYTES = 4096


def read_secret_files(merged: Layer) -> None:
    """Fill each secret whose `*_file` is set from that file (in place)."""
    for secret, file_setting in SECRET_FILES.items():
        path, path_source = merged[file_setting]
        if path is None:
            continue
        value, value_source = merged[secret]
        if value is not None:
            raise InconsistentValues(f"{secret} is given twice: set it or {file_setting}, "
                                     f"not both", {secret: value_source,
                                                   file_setting: path_source})
        merged[secret] = (_read(str(path), file_setting, path_source),
                          Source("file", secret, str(path)))


class SecretFileError(ValueError):
    """A secret file that cannot be read, or does not hold one value on one line."""


def read_secret_file(path: str) -> str:
    """The one value a secret file holds. Not through a symlink, at most
    ``_MAX_SECRET_BYTES``, one line: a path given by someone else (an alert channel's
    ``passwordFile``) cannot make us read a key file or ``/etc/shadow``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise SecretFileError(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        data = file.read(_MAX_SECRET_BYTES + 1)
    if len(data) > _MAX_SECRET_BYTES:
        raise SecretFileError(f"{path} is larger than {_MAX_SECRET_BYTES} bytes")
    text = data.decode("utf-8", "replace").strip()
    if not text or any(c.isspace() for c in text):
        raise SecretFileError(f"{path} must hold one value on one line")
    return text


def _read(path: str, setting: str, source: Source) -> str:
    try:
        return read_secret_file(path)
    except SecretFileError as exc:
        raise BadValue(setting, source, str(exc)) from None


def secrets_in_flags(flags: Mapping[str, str]) -> list[str]:
    """Warnings, one per secret typed as a flag (never the secret itself); `flags` maps
    a setting's name to the text given."""
    warnings = []
    for name in sorted(flags):
        text = flags[name]
        if name == "db_url":
            if _url_has_password(text):
                warnings.append("--db carries a password, which every local user can "
                                "read in ps: use SCHEDULER_DB_PASSWORD or "
                                "--db-password-file")
        elif BY_NAME[name].secret:
            instead = BY_NAME[name].env
            if name in SECRET_FILES:
                instead += f" or {BY_NAME[SECRET_FILES[name]].flag}"
            warnings.append(f"{BY_NAME[name].flag} was given as a flag, which every local "
                            f"user can read in ps: use {instead}")
    return warnings


def _url_has_password(url: str) -> bool:
    authority = url.partition("://")[2].partition("/")[0]
    return ":" in authority.rpartition("@")[0]
