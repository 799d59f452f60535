#!/usr/bin/env bash
# Everything the test suite needs, from a fresh Debian machine to pytest's summary:
# apt packages (when missing and we are root), the venv, the project with its test
# extra, throw-away etcd + MariaDB on loopback, pytest, and the servers stopped again
# whatever happens. Exits with pytest's status (5, "no tests", counts as a failure).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}

need_apt=()
command -v etcd >/dev/null || need_apt+=(etcd-server)
command -v etcdctl >/dev/null || need_apt+=(etcd-client)
command -v mariadbd >/dev/null || need_apt+=(mariadb-server)
command -v mariadb >/dev/null || need_apt+=(mariadb-client)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)  # the web UI's browser tests
command -v systemd-analyze >/dev/null || need_apt+=(systemd)  # verify deploy/*.service
command -v faketime >/dev/null || need_apt+=(faketime)  # skewed worker clocks (e2e)
[ -e /usr/share/i18n/locales/de_DE ] || need_apt+=(locales)  # a comma-decimal locale (held runs)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing: ${need_apt[*]} — install them with apt-get (needs root)" >&2
    exit 1
  fi
  echo "== apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d may forbid starting the system services; we start our own anyway.
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
echo "== pip install -e .[test]"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 \
  | grep -v "^WARNING: Location" || true
"$VENV/bin/python" -c "import trio, etcd3, croniter, asyncmy, trio_asyncio, quart_trio, pytest_trio"

STATE=$(mktemp -d "${TMPDIR:-/tmp}/scheduler-test.XXXXXX")
cleanup() {
  "$PYTHON" scripts/services.py stop --dir "$STATE" || true
  rm -rf "$STATE"
}
trap cleanup EXIT INT TERM
echo "== starting etcd and MariaDB in $STATE"
settings=$("$PYTHON" scripts/services.py start --dir "$STATE")
while IFS='=' read -r key value; do
  export "$key=$value"
  echo "   $key=$value"
done <<< "$settings"

echo "== pytest"
set +e
"$VENV/bin/python" -m pytest "$@"
status=$?
set -e
if [ -d artifacts/walkthrough ]; then
  echo "== screenshots of the UI walk-through (tests/e2e/test_e2e_walkthrough.py): $PWD/artifacts/walkthrough"
fi
if [ "$status" = 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  status=1
fi
exit "$status"
