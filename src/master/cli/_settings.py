"""What schedctl reads from its environment, and its defaults."""

from __future__ import annotations

from typing import Final

PROG: Final = "schedctl"
DEFAULT_URL: Final = "http://127.0.0.1:8070"
URL_ENV: Final = "SCHEDULER_URL"
TOKEN_ENV: Final = "SCHEDULER_API_TOKEN"
TOKENS_FILE_ENV: Final = "SCHEDULER_TOKENS_FILE"  # the master's setting of the same name
DEFAULT_HTTP_TIMEOUT_S: Final = 10.0
