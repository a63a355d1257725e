#!/usr/bin/env python3
"""Sending benchmark (issue 3): SendEmail requests/s with p50/p99 latency at
1 and 16 concurrent connections, SigV4-signed, each accepted message
durably stored (committed to SQLite) before the reply; then RSS while a
long run stores many messages.

Usage: bench/send.py [--bin target/release/sesame] [--duration 10] [--soak N] [--peers]
  --peers also runs the same load against moto's server and
  aws-ses-v2-local in the same run (install them with bench/install-peers.sh).
Needs: the test venv (boto3) and wrk (`apt-get install wrk`). Loopback
only; every run is bounded by --duration, and the soak by N messages.

The load is one SigV4-signed SendEmail (v1, signed by botocore, valid for
15 minutes) replayed by wrk; every request is verified, checked against the
sandbox and quota rules, composed into MIME and committed as a new message.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from foundation import KEY, SECRET, cpu_by_thread, cpu_report, rss_mb, signed_lua, start, steal_share, stop, wrk_requests  # noqa: E402

import boto3  # noqa: E402

ACCOUNT = "000000000000"


def lua_for(url):
    body = ("Action=SendEmail&Version=2010-12-01&Source=bench%40example.com"
            "&Destination.ToAddresses.member.1=rcpt%40example.org"
            "&Message.Subject.Data=Benchmark&Message.Body.Text.Data=Hello+from+the+benchmark")
    return signed_lua(url, body)


def wrk(url, lua, conns, seconds):
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", lua, url + "/"],
                         capture_output=True, text=True, timeout=seconds + 120)
    if "status" in out.stderr:
        sys.exit("the server refused benchmark requests: " + out.stderr[:300])
    return out.stdout


def summary(text):
    rps = next(l.split()[1] for l in text.splitlines() if l.startswith("Requests/sec"))
    lat = {l.split()[0]: l.split()[1] for l in text.splitlines() if l.strip().startswith(("50%", "99%"))}
    return f"{float(rps):,.0f} req/s, p50 {lat['50%']}, p99 {lat['99%']}"


PEERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".peers")


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc):
    import socket

    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"peer exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit("peer did not start")


def bench_peer(name, cmd, port, duration):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=PEERS)
    try:
        wait_port(port, proc)
        url = f"http://127.0.0.1:{port}"
        if name == "moto":
            # moto refuses a sender it has not seen verified.
            boto3.client("ses", endpoint_url=url, region_name="us-east-1", aws_access_key_id=KEY,
                         aws_secret_access_key=SECRET).verify_domain_identity(Domain="example.com")
        lua = lua_for(url)
        for conns in (1, 16):
            out = wrk(url, lua, conns, duration)
            print(f"{name}: SendEmail, {conns} connection(s), {duration} s: {summary(out)}; RSS {rss_mb(proc.pid):.1f} MB")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class WalWatch:
    """Samples the WAL file's size every 100 ms while in use; `longest` is
    the largest seen (it shows whether checkpoints keep up)."""

    def __init__(self, path):
        self.path, self.longest, self.done = path, 0, threading.Event()

    def _run(self):
        while not self.done.wait(0.1):
            try:
                self.longest = max(self.longest, os.path.getsize(self.path))
            except OSError:
                pass

    def __enter__(self):
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/sesame")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--soak", type=int, default=0, help="messages to store in a long run, reporting RSS")
    ap.add_argument("--peers", action="store_true", help="also run the load against moto and aws-ses-v2-local")
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="sesame-bench-")
    env_acct = dict(os.environ, SESAME_ROOT_ACCOUNT_ID=ACCOUNT)
    os.environ.update(env_acct)
    p, url, _ = start(args.bin, d)
    try:
        ses = boto3.client("sesv2", endpoint_url=url, region_name="us-east-1", aws_access_key_id=KEY, aws_secret_access_key=SECRET)
        ses.create_email_identity(EmailIdentity="example.com")
        subprocess.run([args.bin, "identities", "verify", "--account", ACCOUNT, "--region", "us-east-1", "example.com", "--data-dir", d], check=True, capture_output=True)
        subprocess.run([args.bin, "accounts", "approve", "--account", ACCOUNT, "--region", "us-east-1", "--data-dir", d], check=True, capture_output=True)
        subprocess.run([args.bin, "accounts", "set-quota", "--account", ACCOUNT, "--region", "us-east-1", "--max-24h-send", "-1",
                        "--max-send-rate", "1000000000", "--data-dir", d], check=True, capture_output=True)
        lua = lua_for(url)
        print(f"idle RSS: {rss_mb(p.pid):.1f} MB")
        for conns in (1, 16):
            c0, s0 = cpu_by_thread(p.pid), steal_share()
            with WalWatch(os.path.join(d, "sesame.db-wal")) as wal:
                out = wrk(url, lua, conns, args.duration)
            c1, s1 = cpu_by_thread(p.pid), steal_share()
            n = wrk_requests(out)
            print(f"SendEmail, {conns} connection(s), {args.duration} s: {summary(out)}; RSS {rss_mb(p.pid):.1f} MB")
            print(f"  {cpu_report(c0, c1, n, s0, s1)}; WAL at most {wal.longest / 1e6:.1f} MB")
        if args.soak:
            stored = 0
            t0 = time.time()
            while stored < args.soak:
                out = wrk(url, lua, 16, 20)
                n = wrk_requests(out)
                stored += n
                print(f"  soak: {stored:,} messages stored, {time.time() - t0:.0f} s, RSS {rss_mb(p.pid):.1f} MB, "
                      f"db {sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)) / 1e6:.0f} MB", flush=True)
    finally:
        stop(p)
        shutil.rmtree(d, ignore_errors=True)
    if args.peers:
        if not os.path.isdir(PEERS):
            sys.exit("peers are not installed: run bench/install-peers.sh")
        port = free_port()
        bench_peer("moto", [os.path.join(PEERS, "venv", "bin", "moto_server"), "-p", str(port)], port, args.duration)
        port = free_port()
        bench_peer("aws-ses-v2-local",
                   ["node", os.path.join(PEERS, "node_modules", "aws-ses-v2-local", "dist", "cli.js"), "--port", str(port)],
                   port, args.duration)


if __name__ == "__main__":
    main()
