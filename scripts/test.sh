#!/usr/bin/env bash
# Runs every test from a clean clone. Installs what the tests need first:
# a Python venv with boto3, the AWS CLI and pytest (tests/requirements.txt),
# the AWS SDK for JavaScript v3 and playwright-core (tests/js, from its
# lockfile), Debian's chromium and BIND; and starts a throwaway PostgreSQL
# cluster (scripts/pg.sh) for the PostgreSQL backend's tests.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== installing test dependencies"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
(cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
# Debian's chromium for the console's browser test (playwright-core drives
# it and downloads no browser).
# And BIND (named), the authoritative server the records-publishing test
# sends dynamic updates to, swaks (an SMTP client for submission) and
# Postfix (a real receiving MTA whose DSNs come back to Sesame).
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
{ command -v named >/dev/null 2>&1 || [ -x /usr/sbin/named ]; } || missing="$missing bind9"
command -v swaks >/dev/null 2>&1 || missing="$missing swaks libio-socket-ssl-perl"
[ -x /usr/lib/postfix/sbin/master ] || missing="$missing postfix"
if [ -n "$missing" ]; then
  echo "== installing Debian's$missing"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  # Postfix installs with no system configuration: the test runs its own.
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

echo "== generated code matches AWS's models (models/, kept in this repository)"
python3 tools/gen_wire_ops.py --check

python3 tools/gen_compat.py --check

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings

echo "== a throwaway PostgreSQL cluster (initdb in a temporary directory, loopback only)"
eval "$(scripts/pg.sh)"
export SESAME_TEST_POSTGRES
trap 'scripts/pg.sh stop "$PG_DIR"' EXIT

echo "== Rust unit and integration tests (the store's on SQLite and on PostgreSQL)"
cargo build --locked
cargo test --locked --workspace

echo "== interop suite: the real binary driven by boto3, the AWS CLI and the JS SDK v3"
.venv/bin/python -m pytest tests/interop -q

echo "== the interop suite again, every server on PostgreSQL (test_nodes.py ran above: it always is)"
SESAME_INTEROP_DATABASE=postgres .venv/bin/python -m pytest tests/interop -q \
  --deselect tests/interop/test_nodes.py
