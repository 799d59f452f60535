"""schedctl: the operator's command line for the master's HTTP API (docs/api.md).

It speaks only the documented API, over httpx with timeouts, and turns every failure
into one line on stderr and an exit code a script can branch on (drawn in `_errors`):

    0  success                      1  the API answered an error (404, 400, 403, 409, 503...)
    2  usage error (bad arguments)  3  cannot reach the master (down, wrong --url, timeout)
    4  unauthorized (401: missing or wrong token)

Human output is aligned tables with times in local ISO-8601; `--json` prints the API's
JSON unchanged for scripts. Server data is printed with control characters escaped, so a
job's command or output cannot drive the operator's terminal.

Modules, one idea each: `_settings` (environment names, defaults), `_errors` (exit codes,
error tree), `_client` (HTTP and error answers), `_format` (cells, tables, times shown),
`_times` (--since/--until), `_views` (renderings of answers), `_context`, `_commands`
(handlers), `_follow` (runs --follow), `_tokens` (`token add|list|remove`: the master's
tokens file, edited locally), `_parser` (argparse), `_main` (main).
This package imports only httpx, the standard library and `cluster.tokens` (stdlib
only): never the master's server. Its own token comes from $SCHEDULER_API_TOKEN or
--token-file; --token still works, with a warning (ps shows it).
"""

from ._errors import (
    EXIT_API,
    EXIT_AUTH,
    EXIT_CONNECT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    ApiError,
    AuthError,
    CliError,
    ConnectError,
    UsageError,
)
from ._format import cell, format_table
from ._main import main
from ._settings import DEFAULT_URL, PROG, TOKEN_ENV, URL_ENV
from ._times import parse_time_ms

__all__ = [
    "DEFAULT_URL", "EXIT_API", "EXIT_AUTH", "EXIT_CONNECT", "EXIT_INTERRUPTED", "EXIT_OK",
    "EXIT_USAGE", "PROG", "TOKEN_ENV", "URL_ENV", "ApiError", "AuthError", "CliError",
    "ConnectError", "UsageError", "cell", "format_table", "main", "parse_time_ms",
]
