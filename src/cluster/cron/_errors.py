"""The cron errors: small classes that build their own one-line message.

    ValueError
     └── CronError          invalid expression; says what is wrong and in which field
          └── TimeZoneError unknown or forbidden time-zone name
"""

from __future__ import annotations

class CronError(ValueError):
    """A cron expression is invalid; `reason` says what and in which field."""

    def __init__(self, expr: str, reason: str) -> None:
        self.expr = expr
        self.reason = reason
        super().__init__(self._message())

    def _message(self) -> str:
        return f"{self.reason} (in cron expression {self.expr!r})"


class TimeZoneError(CronError):
    """The time-zone name is not an IANA zone we can load (or is the machine's zone)."""

    def __init__(self, name: str, reason: str = "unknown time zone") -> None:
        self.zone_name = name
        super().__init__(name, f"{reason} {name!r}")

    def _message(self) -> str:
        return self.reason
