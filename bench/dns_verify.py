#!/usr/bin/env python3
"""DNS verification benchmark (issue 5): how long the verifier takes to
check N domain identities against a DNS server on loopback, with at most
--max-in-flight queries outstanding.

Usage: bench/dns_verify.py [--bin target/release/sesame]
         [--zone-server target/release/examples/zone_server]
         [--domains 10000] [--max-in-flight 64]
Needs: the test venv (boto3) and the zone server example
(`cargo build --release -p sesame-dns --examples`). Loopback only.

1. N domains are created with VerifyDomainIdentity (16 threads).
2. Their `_amazonses` TXT records (and an SOA each) are written to a zone
   file the zone server answers from.
3. Sesame starts with --dns-server pointing at it; its first pass turns
   every domain from Pending to Success. The time is the pass's own
   `elapsed_ms` from the log.
4. Sesame starts again: the second pass re-verifies N domains already
   verified (the steady state every --verify-interval).
"""
import argparse
import concurrent.futures
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from foundation import KEY, SECRET, free_port, start  # noqa: E402

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402


def create_domains(url, n):
    client = boto3.client("ses", endpoint_url=url, region_name="us-east-1", aws_access_key_id=KEY,
                          aws_secret_access_key=SECRET, config=Config(max_pool_connections=16))
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: client.verify_domain_identity(Domain=f"d{i}.bench.test"), range(n)))


def pass_line(log_path, timeout):
    """The first verification pass logged with anything checked."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(log_path) as f:
            for line in f:
                if "verification pass" in line:
                    m = dict(re.findall(r"(\w+)=(\d+)", line))
                    if int(m.get("checked", 0)) > 0:
                        return {k: int(v) for k, v in m.items()}
        time.sleep(0.2)
    sys.exit(f"no verification pass within {timeout}s; see {log_path}")


def verify_run(binary, data_dir, dns_port, max_in_flight):
    log = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)
    port = free_port()
    env = dict(os.environ, SESAME_ROOT_ACCESS_KEY_ID=KEY, SESAME_ROOT_SECRET_ACCESS_KEY=SECRET,
               SESAME_LOG="info,sesame_core::verifier=debug")
    p = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir,
                          "--delivery", "capture", "--dns-server", f"127.0.0.1:{dns_port}",
                          "--verify-interval", "1h", "--dns-max-in-flight", str(max_in_flight)],
                         env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        return pass_line(log.name, 120)
    finally:
        p.terminate()
        p.wait(30)
        os.unlink(log.name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/sesame")
    ap.add_argument("--zone-server", default="target/release/examples/zone_server")
    ap.add_argument("--domains", type=int, default=10000)
    ap.add_argument("--max-in-flight", type=int, default=64)
    a = ap.parse_args()

    data_dir = tempfile.mkdtemp(prefix="sesame-bench-dns-")
    zone_path = os.path.join(data_dir, "zone.txt")
    try:
        p, url, _ = start(a.bin, data_dir)
        t0 = time.perf_counter()
        create_domains(url, a.domains)
        created_s = time.perf_counter() - t0
        p.terminate()
        p.wait(30)
        db = sqlite3.connect(os.path.join(data_dir, "sesame.db"))
        rows = db.execute("SELECT name, json_extract(data, '$.verification_token') FROM identities").fetchall()
        db.close()
        with open(zone_path, "w") as f:
            for name, token in rows:
                f.write(f"{name} SOA ns1.bench.test hostmaster.bench.test 1\n")
                f.write(f"_amazonses.{name} TXT {token}\n")
        dns_port = free_port()
        zs = subprocess.Popen([a.zone_server, str(dns_port), zone_path], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
        assert "listening" in zs.stdout.readline()
        first = verify_run(a.bin, data_dir, dns_port, a.max_in_flight)
        again = verify_run(a.bin, data_dir, dns_port, a.max_in_flight)
        zs.stdin.close()
        answered = int(zs.stdout.read().split()[-1])
        zs.wait(10)
        db = sqlite3.connect(os.path.join(data_dir, "sesame.db"))
        verified = db.execute("SELECT COUNT(*) FROM identities WHERE verification_status = 'Success'").fetchone()[0]
        db.close()
        print(json.dumps({
            "domains": a.domains,
            "max_in_flight": a.max_in_flight,
            "created_s": round(created_s, 1),
            "first_pass": first,
            "second_pass": again,
            "verified": verified,
            "queries_answered": answered,
        }, indent=2))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
