"""How a run's orphan script (``orphan``) reaches etcd as its worker does.

The orphan settles a run after its worker died, so it must get past etcd's TLS and
auth on its own: it gets the worker's CA and client-certificate paths and its user
on its command line, and the password through a file, never on the command line
(every local user can read /proc/PID/cmdline) nor in the environment (the job's
command inherits it). That file is ``--etcd-password-file`` when the worker was given
one; otherwise the worker writes its password at start-up to ``etcd-password`` in
its state directory, created with mode 0600 (0700 for the directory), and replaces
it atomically, so a run's orphan always reads a whole password. (Workers sharing a
state directory share that file: give them the same etcd user, or their own
directories.)

The orphan speaks to etcd's JSON gateway, which has a rule of its own: with
``--client-cert-auth`` and auth on, it refuses a client certificate that carries a
Common Name. ``check_gateway`` tries the gateway once at start-up, as an orphan
would, so that such a certificate stops the worker with one line rather than leave
every orphan unable to settle its run.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

from cluster.config import Config

from . import orphan

__all__ = ["GatewayRefused", "check_gateway", "orphan_command", "password_path",
           "write_password_file"]

PASSWORD_FILE = "etcd-password"
GATEWAY_CHECK_S = 5.0
_CN_REFUSED = "CommonName"


class GatewayRefused(Exception):
    """etcd's JSON gateway, which a run's orphan script speaks to, refused us."""

    def __init__(self, detail: str) -> None:
        hint = (": with --client-cert-auth and auth on, etcd's gateway refuses a client "
                "certificate that has a Common Name; give the worker one without"
                if _CN_REFUSED in detail else "")
        super().__init__(f"etcd's JSON gateway (used by runs whose worker died) refused "
                         f"this worker: {detail}{hint}")


class PasswordFileError(Exception):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot write the etcd password for orphan runs to {path}: "
                         f"{reason}")


def password_path(config: Config) -> Path | None:
    """Where the orphan reads the etcd password (None: no etcd user)."""
    if config.etcd_user is None:
        return None
    if config.etcd_password_file is not None:
        return Path(config.etcd_password_file).absolute()
    return config.state_path / PASSWORD_FILE


def write_password_file(config: Config) -> None:
    """Write the password for the orphans, unless it already lives in a file of its own."""
    path = password_path(config)
    if path is None or config.etcd_password_file is not None:
        return
    assert config.etcd_password is not None  # the config checks user and password go together
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "w") as file:
                file.write(config.etcd_password + "\n")
            os.replace(temporary, path)  # atomic: an orphan reads the old or the new
        finally:
            temporary.unlink(missing_ok=True)
    except OSError as exc:
        raise PasswordFileError(path, exc.strerror or str(exc)) from None


def _absolute(path: str | None) -> str | None:
    return None if path is None else os.path.abspath(path)


def orphan_access(config: Config) -> orphan.Access:
    password = config.etcd_password if config.etcd_user is not None else None
    return orphan.Access(_absolute(config.etcd_ca_file), _absolute(config.etcd_cert_file),
                         _absolute(config.etcd_key_file), config.etcd_user, password)


def orphan_command(config: Config) -> list[str]:
    """The orphan's argv minus the run's arguments (a run's cwd is not ours: absolute
    paths)."""
    password = password_path(config)
    return orphan.command(
        config.etcd_endpoints, ca_file=_absolute(config.etcd_ca_file),
        cert_file=_absolute(config.etcd_cert_file), key_file=_absolute(config.etcd_key_file),
        user=config.etcd_user, password_file=None if password is None else str(password))


def check_gateway(config: Config) -> None:
    """Read the prefix once through etcd's JSON gateway, as an orphan would. Raises
    GatewayRefused when etcd answers with an error; an etcd that does not answer is
    no verdict (blocking: seconds at most)."""
    prefix = config.prefix.encode()
    body = {"key": base64.b64encode(prefix).decode(),
            "range_end": base64.b64encode(_prefix_end(prefix)).decode(),
            "limit": 1, "keys_only": True}
    gateway = orphan.Gateway([e.removeprefix("http://").removeprefix("https://")
                              for e in config.etcd_endpoints],
                             time.monotonic() + GATEWAY_CHECK_S, orphan_access(config))
    try:
        gateway.call("kv/range", body)
    except orphan.Refused as exc:
        raise GatewayRefused(str(exc)) from None
    except orphan.Unreachable:
        return


def _prefix_end(prefix: bytes) -> bytes:
    end = bytearray(prefix)
    end[-1] += 1  # a prefix ends with "/": never 0xff
    return bytes(end)
