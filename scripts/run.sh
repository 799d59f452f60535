#!/usr/bin/env bash
# `make run`: the whole system locally on embedded defaults — etcd, the master on
# 127.0.0.1:8070 and two workers, run records in SQLite, all state in .state/.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-$PWD/.venv}
PYTHON=${PYTHON:-python3}

if ! command -v etcd >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== etcd not found: installing Debian's etcd-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
  else
    echo "etcd is needed and not on PATH. Install it, then run 'make run' again:" >&2
    echo "  Debian/Ubuntu: sudo apt-get install etcd-server" >&2
    echo "  elsewhere:     an etcd 3.4+ binary on PATH (https://etcd.io/docs/latest/install/)" >&2
    exit 1
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
echo "== pip install -e ."
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e . 2>&1 \
  | grep -v "^WARNING: Location" || true
exec "$VENV/bin/python" scripts/local_cluster.py "$@"
