#!/usr/bin/env bash
# Installs the peers bench/send.py compares against, into bench/.peers:
# moto's server (PyPI) and aws-ses-v2-local (npm). The npm tree is resolved
# as of 2025-09-01, because some newer transitive versions are not on the
# registry this machine reaches.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p .peers
cd .peers
[ -x venv/bin/python ] || python3 -m venv venv
venv/bin/pip install --quiet --disable-pip-version-check "moto[server]"
[ -f package.json ] || echo '{"name": "sesame-bench-peers", "private": true}' > package.json
npm install --no-audit --no-fund --loglevel=error --before=2025-09-01 aws-ses-v2-local
echo "peers installed in bench/.peers"
