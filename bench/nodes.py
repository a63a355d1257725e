#!/usr/bin/env python3
"""Several nodes on PostgreSQL (issue 24), in one sitting: SendEmail/s and
p99 latency at 16 connections on SQLite, on PostgreSQL with one node, and
on PostgreSQL with two nodes (8 connections on each), with the CPU each
message cost: Sesame's processes, the PostgreSQL server's processes and
wrk, all on the same cores. The machine's HTTP ceiling (bench/ceiling.py)
is measured first, in the same run.

Usage: bench/nodes.py [--bin target/release/sesame] [--duration 10]
Uses SESAME_TEST_POSTGRES if set, else starts a throwaway cluster
(scripts/pg.sh) and stops it at the end. Loopback only; bounded by
--duration per configuration. Mail is captured (no delivery), so that the
figures are the API's and the store's.
"""
import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from foundation import (  # noqa: E402
    KEY, SECRET, cpu_by_thread, new_database, postgres_cpu, start, stop, throwaway_postgres, wrk_requests,
)
from send import lua_for  # noqa: E402

import boto3  # noqa: E402

ACCOUNT = "000000000000"



def prepare(binary, url, data_dir, env):
    """The bench account out of the sandbox, unlimited, with example.com verified."""
    ses = boto3.client("sesv2", endpoint_url=url, region_name="us-east-1", aws_access_key_id=KEY,
                       aws_secret_access_key=SECRET)
    ses.create_email_identity(EmailIdentity="example.com")
    for args in (["identities", "verify", "--account", ACCOUNT, "--region", "us-east-1", "example.com"],
                 ["accounts", "approve", "--account", ACCOUNT, "--region", "us-east-1"],
                 ["accounts", "set-quota", "--account", ACCOUNT, "--region", "us-east-1", "--max-24h-send", "-1",
                  "--max-send-rate", "1000000000"]):
        subprocess.run([binary, *args, "--data-dir", data_dir], check=True, capture_output=True,
                       env=dict(os.environ, **env))


def latency_ms(text, pct):
    m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def measure(name, binary, nodes, seconds, conns=16):
    """Starts `nodes` ((data dir, env) each), loads them with `conns`
    connections in all for `seconds`, prints one line."""
    procs = []
    try:
        for d, env in nodes:
            p, url, _ = start(binary, d, ("--delivery", "capture"), env_extra=env)
            procs.append((p, url, d, env))
        prepare(binary, procs[0][1], procs[0][2], procs[0][3])
        luas = [lua_for(url) for _, url, _, _ in procs]
        # A short warm-up: connections, caches, the first batches.
        for (_, url, _, _), lua in zip(procs, luas):
            subprocess.run(["wrk", "-t1", "-c4", "-d2s", "-s", lua, url + "/"], capture_output=True, timeout=60)
        c0 = [sum(cpu_by_thread(p.pid).values()) for p, *_ in procs]
        pg0 = postgres_cpu()
        k0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        per = conns // len(procs)
        wrks = [subprocess.Popen(["wrk", "-t1", f"-c{per}", f"-d{seconds}s", "--latency", "-s", lua, url + "/"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for (_, url, _, _), lua in zip(procs, luas)]
        outs = [w.communicate(timeout=seconds + 120) for w in wrks]
        k1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        pg1 = postgres_cpu()
        c1 = [sum(cpu_by_thread(p.pid).values()) for p, *_ in procs]
        for out, err in outs:
            if "status" in err:
                sys.exit(f"{name}: the server refused benchmark requests: {err[:300]}")
        n = sum(wrk_requests(out) for out, _ in outs)
        p99 = max(latency_ms(out, 99) for out, _ in outs)
        p50 = max(latency_ms(out, 50) for out, _ in outs)
        sesame_us = (sum(c1) - sum(c0)) / n * 1e6
        pg_us = (pg1 - pg0) / n * 1e6
        wrk_us = ((k1.ru_utime - k0.ru_utime) + (k1.ru_stime - k0.ru_stime)) / n * 1e6
        print(f"{name}: {n / seconds:,.0f} SendEmail/s at {conns} connections, p50 {p50:.2f} ms, p99 {p99:.2f} ms; "
              f"CPU a message: sesame {sesame_us:.0f} us, PostgreSQL {pg_us:.0f} us, wrk {wrk_us:.0f} us "
              f"(total {sesame_us + pg_us + wrk_us:.0f} us)", flush=True)
        return n / seconds
    finally:
        for p, *_ in procs:
            stop(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/sesame")
    ap.add_argument("--duration", type=int, default=10)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    os.environ.update(SESAME_ROOT_ACCOUNT_ID=ACCOUNT)
    http = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "ceiling.py"), "--bin", args.bin,
                           "--duration", str(args.duration)], capture_output=True, text=True, check=True).stdout
    ceiling = float(re.search(r"([\d,]+) req/s", http).group(1).replace(",", ""))
    print(f"ceiling: {http.strip().splitlines()[-1]}")
    print(f"{os.cpu_count()} cores; wrk, the nodes and PostgreSQL share them")
    admin, stop_pg = throwaway_postgres()
    dirs = []
    try:
        def dir_():
            d = tempfile.mkdtemp(prefix="sesame-nodes-")
            dirs.append(d)
            return d

        results = {}
        results["sqlite"] = measure("SQLite, one node", args.bin, [(dir_(), {})], args.duration)
        db = new_database(admin)
        results["pg1"] = measure("PostgreSQL, one node", args.bin,
                                 [(dir_(), {"SESAME_DATABASE": db, "SESAME_NODE_NAME": "n1"})], args.duration)
        db = new_database(admin)
        results["pg2"] = measure("PostgreSQL, two nodes", args.bin,
                                 [(dir_(), {"SESAME_DATABASE": db, "SESAME_NODE_NAME": "n1"}),
                                  (dir_(), {"SESAME_DATABASE": db, "SESAME_NODE_NAME": "n2"})], args.duration)
        for k, label in (("sqlite", "SQLite"), ("pg1", "PostgreSQL, one node"), ("pg2", "PostgreSQL, two nodes")):
            print(f"  {label}: {results[k] / ceiling:.1%} of the HTTP ceiling")
        print(f"PostgreSQL one node / SQLite: {results['pg1'] / results['sqlite']:.2f}; "
              f"two nodes / one: {results['pg2'] / results['pg1']:.2f}")
    finally:
        stop_pg()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
