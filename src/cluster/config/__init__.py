"""One typed, frozen configuration shared by the master and the worker.

Why one object: both processes talk to the same etcd prefix and the same run store, so
the settings they share must be spelled, defaulted and validated once. Each process
reads only the fields it needs; `fields_for("master")` / `fields_for("worker")` say
which flags each command line offers.

Sources, lowest precedence first (each one overrides only what it actually sets):

1. the defaults declared on `Config` (no database configured -> a SQLite file);
2. a JSON file (`--config PATH` or `$SCHEDULER_CONFIG`): our snake_case field names,
   or the seed's camelCase keys (`apiPort`, `etcdDialTimeout` in ms, `dbUri` + `dbName`
   + `dbUsername` + `dbPassword`, ...), matched case-insensitively as Go's encoding/json
   does (so `apiReadTimeOut` works), with `//` line comments allowed outside strings so
   the seed's example files load as printed;
3. environment variables `SCHEDULER_<FIELD_UPPER>` (never `ETCD_*`: etcd reads those);
   `SCHEDULER_TEST_*` and `SCHEDULER_CONFIG` are reserved and ignored here;
4. command-line flags, registered with `default=argparse.SUPPRESS` so that only flags
   actually given override anything.

All of it is driven by one table: the `dataclasses.field` metadata of Config's fields
(help, flag, seed keys, check; declared in `_fields`) plus their type hints, compiled
into `SETTINGS`.
Default paths never depend on the working directory (`_paths`): the SQLite run store
and the spill files live in the state directory, the web UI is the installed one.
Relative paths given explicitly are made absolute against the working directory at
start-up. Secrets (`api_token`, `etcd_password`, `db_password`) also come from files
named by their `*_file` settings (`_secrets`), read once when the config is built; a
secret typed as a flag works but earns a warning, since `ps` shows it.

Modules, one idea each, in import order (each imports only those before it): `_redact`,
`_errors` (Source and the error tree, drawn there), `_labels`, `_paths`, `_urls`
(run-store URLs, etcd endpoints), `_checks` (range checks), `_kinds` (Setting and
value conversion), `_fields` (Config's fields and their metadata), `_table` (SETTINGS
compiled from them, and validation), `_secrets`, `_file` (the JSON file and the seed's
keys), `_sources` (environment, flags, and the merge of layers), `_config` (Config
and load_config), `_cli` (flags).
"""

from ._cli import add_config_flags, config_from_cli, fields_for, secret_flag_warnings
from ._errors import (
    BadDbUrl,
    BadEndpoint,
    BadValue,
    ConfigError,
    ConfigFileError,
    DuplicateKey,
    InconsistentValues,
    Source,
    UnknownKey,
)
from ._file import read_config_file, strip_line_comments
from ._kinds import Setting
from ._labels import Labels
from ._paths import default_state_dir
from ._redact import redact_db_url
from ._secrets import SecretFileError, read_secret_file
from ._config import Config, load_config
from ._sources import CONFIG_ENV
from ._table import ENV_PREFIX, SETTINGS
from ._urls import DbUrl, MysqlUrl, SqliteUrl, parse_db_url, parse_endpoint

__all__ = [
    "CONFIG_ENV", "ENV_PREFIX", "SETTINGS", "BadDbUrl", "BadEndpoint", "BadValue",
    "Config", "ConfigError", "ConfigFileError", "DbUrl", "DuplicateKey",
    "InconsistentValues", "Labels", "MysqlUrl", "SecretFileError", "Setting", "Source",
    "SqliteUrl",
    "UnknownKey", "add_config_flags", "config_from_cli", "default_state_dir", "fields_for",
    "load_config", "secret_flag_warnings",
    "parse_db_url", "parse_endpoint", "read_config_file", "read_secret_file", "redact_db_url",
    "strip_line_comments",
]
