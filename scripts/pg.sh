#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the tests: `initdb` in a new
# temporary directory, listening only on a free loopback port (and a
# socket in that directory), trust authentication for the local user.
# Prints the shell assignments to use it:
#   PG_DIR=…  PG_PORT=…  SESAME_TEST_POSTGRES=postgres://…/postgres
# Stop it with: scripts/pg.sh stop "$PG_DIR"
#
# The server's programs come from `pg_config --bindir` (PostgreSQL 15 on
# this machine image) or Debian's postgresql package, installed if missing.
set -euo pipefail

bindir() {
  local d=""
  if command -v pg_config >/dev/null 2>&1; then d="$(pg_config --bindir)"; fi
  if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  fi
  echo "$d"
}

if [ "${1:-}" = stop ]; then
  dir="$2"
  bin="$(bindir)"
  as=""
  if [ "$(id -u)" = 0 ]; then as="runuser -u postgres --"; fi
  $as "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  exit 0
fi

bin="$(bindir)"
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "== installing Debian's postgresql" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  bin="$(bindir)"
fi

dir="$(mktemp -d /tmp/sesame-pg.XXXXXX)"
# PostgreSQL refuses to run as root: as root, the cluster belongs to the
# postgres user Debian's package made.
as=""
user="$(id -un)"
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$dir"
  as="runuser -u postgres --"
  user=postgres
fi
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
$as "$bin/initdb" -D "$dir/data" -U "$user" -A trust --no-sync -E UTF8 >/dev/null
$as "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 start \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300 -c fsync=on -c shared_buffers=128MB" >/dev/null
echo "PG_DIR=$dir"
echo "PG_PORT=$port"
echo "SESAME_TEST_POSTGRES=postgres://$user@127.0.0.1:$port/postgres"
