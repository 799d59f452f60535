"""Who a job runs as: ``--run-as`` for every job, a job's own ``user`` if the worker allows it.

Whoever can write a job can run any command on every matching worker, so a worker
started as root (a system service) should not run jobs as root: ``--run-as USER``
makes every job run as that user, and ``--allowed-users`` lists the users a job may
name in its ``user`` field instead. Decided here, per run:

- no ``user``: the ``--run-as`` user, else the worker's own user (as before: nothing
  changes, not even the environment or the working directory);
- ``user`` naming that same default user: honoured (it grants nothing more);
- ``user`` in ``--allowed-users``: that user, looked up on this machine at each run
  (users come and go; the lookup may block on NSS, so it runs in a thread);
- otherwise the run is refused (``UserRefused``): it fails with a clear record, and
  nothing is started. The Executor counts refusals by ``reason``.

A job run as a user (``Account``) gets that user's ``HOME``, ``USER`` and ``LOGNAME``
(from its passwd entry; the job's own ``env`` may still override them) and starts in
its home directory, or in ``/`` when that is not a directory (``nobody``'s is
``/nonexistent``). How the process changes user is ``drop``'s business.

Checked once, at start-up (``JobUsers.from_config``; the worker exits 2 with the
message): ``--run-as`` names an existing user; a worker that is not root may only
"run as" itself, and may only allow itself; changing user needs ``setpriv`` and
``perl`` (``drop``). A root worker without ``--run-as`` gets one warning (``warning``).

Errors::

    Exception
     ├── RunAsError ............ start-up: the settings cannot work here (exit 2)
     │    ├── UnknownRunAsUser
     │    ├── NeedsRoot
     │    └── MissingTool
     └── UserRefused ........... one run: its ``user`` cannot be used on this worker
          ├── UserNotAllowed     reason ``user_not_allowed``
          └── UnknownUser        reason ``unknown_user``
"""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

import trio

from cluster.config import Config

__all__ = ["Account", "JobUsers", "RunAsError", "UserRefused", "lookup_account"]

ROOT_UID: Final = 0
USER_NOT_ALLOWED: Final = "user_not_allowed"
UNKNOWN_USER: Final = "unknown_user"
REFUSAL_REASONS: Final = (USER_NOT_ALLOWED, UNKNOWN_USER)  # the metric's label values


class RunAsError(Exception):
    """The run-as settings cannot work on this machine; ``str`` is one line."""


class UnknownRunAsUser(RunAsError):
    def __init__(self, name: str) -> None:
        super().__init__(f"--run-as {name}: no such user on this machine")


class NeedsRoot(RunAsError):
    def __init__(self, setting: str, names: Iterable[str], me: str) -> None:
        super().__init__(f"{setting} {','.join(names)}: the worker runs as {me}, not root, "
                         f"so it cannot run jobs as another user; start it as root or "
                         f"drop {setting}")


class MissingTool(RunAsError):
    def __init__(self, tool: str, package: str) -> None:
        super().__init__(f"running jobs as another user needs {tool} ({package}) on PATH; "
                         f"install it or drop --run-as and --allowed-users")


class UserRefused(Exception):
    """A job's ``user`` cannot be used on this worker; ``reason`` is a metric label."""

    reason: str = ""


class UserNotAllowed(UserRefused):
    reason = USER_NOT_ALLOWED

    def __init__(self, name: str) -> None:
        super().__init__(f"user {name!r} is not allowed on this worker (--allowed-users)")


class UnknownUser(UserRefused):
    reason = UNKNOWN_USER

    def __init__(self, name: str) -> None:
        super().__init__(f"user {name!r} does not exist on this worker")


@dataclass(frozen=True, slots=True)
class Account:
    """A user to run a job as, as this machine knows it."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]  # supplementary groups, as initgroups would set them
    home: str
    workdir: str  # where its jobs start: its home, or ``/`` if that is not a directory

    def env(self) -> dict[str, str]:
        return {"HOME": self.home, "USER": self.name, "LOGNAME": self.name}

    def is_current(self) -> bool:
        """The worker already runs as this user: no change of user needed."""
        return self.uid == os.geteuid()


def lookup_account(name: str) -> Account:
    """Blocking (NSS, and a stat of the home); raises KeyError if there is no such user."""
    entry = pwd.getpwnam(name)
    groups = tuple(sorted(set(os.getgrouplist(entry.pw_name, entry.pw_gid))))
    workdir = entry.pw_dir if os.path.isdir(entry.pw_dir) else "/"
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir, workdir)


def _own_name(euid: int) -> str:
    try:
        return pwd.getpwuid(euid).pw_name
    except KeyError:  # a uid without a passwd entry (containers)
        return f"uid {euid}"


@dataclass(frozen=True, slots=True)
class Tools:
    """Absolute paths of what changing user needs (``drop``), found at start-up."""

    setpriv: str
    perl: str


def find_tools() -> Tools:
    found = {}
    for tool, package in (("setpriv", "util-linux"), ("perl", "perl-base")):
        path = shutil.which(tool)
        if path is None:
            raise MissingTool(tool, package)
        found[tool] = os.path.abspath(path)
    return Tools(**found)


class JobUsers:
    """The worker's policy: which account each run uses. Built once, by ``from_config``."""

    def __init__(self, *, default: Account | None, allowed: frozenset[str],
                 own_name: str, tools: Tools | None, warning: str | None,
                 lookup: Callable[[str], Account] = lookup_account) -> None:
        self._default = default
        self._allowed = allowed
        self._own_name = own_name
        self._lookup = lookup
        self.tools = tools  # None when no run may change user
        self.warning = warning  # to log once at start-up, if not None

    @classmethod
    def from_config(cls, config: Config, *,
                    lookup: Callable[[str], Account] = lookup_account) -> JobUsers:
        """Check the settings against this machine (blocking); raises RunAsError."""
        euid = os.geteuid()
        own_name = _own_name(euid)
        default = None
        if config.run_as is not None:
            try:
                default = lookup(config.run_as)
            except KeyError:
                raise UnknownRunAsUser(config.run_as) from None
            if euid != ROOT_UID and default.uid != euid:
                raise NeedsRoot("--run-as", [config.run_as], own_name)
        others = [name for name in config.allowed_users if name != own_name]
        if euid != ROOT_UID and others:
            raise NeedsRoot("--allowed-users", others, own_name)
        may_change = euid == ROOT_UID and (default is not None or bool(others))
        warning = None
        if euid == ROOT_UID and default is None:
            warning = ("the worker runs as root without --run-as: jobs without an allowed "
                       "'user' run as root; set --run-as USER")
        return cls(default=default, allowed=frozenset(config.allowed_users),
                   own_name=own_name, tools=find_tools() if may_change else None,
                   warning=warning, lookup=lookup)

    @classmethod
    def as_worker(cls) -> JobUsers:
        """Every job runs as the worker itself, none may choose (no checks, no lookups)."""
        return cls(default=None, allowed=frozenset(), own_name=_own_name(os.geteuid()),
                   tools=None, warning=None)

    async def for_job(self, user: str | None) -> Account | None:
        """The account a run uses; None = the worker's own, unchanged. Raises UserRefused."""
        default = self._default
        if user is None or (default is not None and user == default.name):
            return default
        if default is None and user == self._own_name:
            return None  # what it would run as anyway
        if user not in self._allowed:
            raise UserNotAllowed(user)
        try:
            return await trio.to_thread.run_sync(self._lookup, user, abandon_on_cancel=True)
        except KeyError:
            raise UnknownUser(user) from None
