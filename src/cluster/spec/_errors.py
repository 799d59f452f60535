"""The job spec's one error class."""

from __future__ import annotations

__all__ = ["SpecError"]


class SpecError(ValueError):
    """A job spec is invalid: `field` is the JSON field (or `job` for the document)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")
