#!/usr/bin/env python3
"""SMTP submission benchmark (issue 25): messages/s submitted over SMTP
(465, implicit TLS, AUTH PLAIN with SES SMTP credentials) with 16
sessions, against SendEmail/s over the API at 16 connections (wrk), in one
run on the same server, with the CPU each takes per message.

Usage: bench/smtp.py [--bin target/release/sesame] [--duration 10]
Needs: the test venv and wrk. Loopback only; bounded by --duration.

The SMTP load is 16 asyncio sessions in one process, each sending its
next message as soon as the last is acknowledged: MAIL, RCPT and
`BDAT n LAST` with the message in one write (PIPELINING and CHUNKING),
so that a message costs one round trip, as a good SMTP client's does.
Mail goes to the mailbox simulator with production access, so that
neither the sandbox nor the quotas measure themselves.
"""
import argparse
import asyncio
import base64
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from foundation import KEY, SECRET, cpu_by_thread, free_port, signed_lua, start, stop, wrk_requests  # noqa: E402

MESSAGE = (b"From: bench@example.com\r\nTo: success@simulator.amazonses.com\r\nSubject: Benchmark\r\n"
           b"\r\nHello from the SMTP benchmark.\r\n")


async def session(port, password, deadline, counts):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)

    async def replies(n):
        got = []
        while len(got) < n:
            line = await r.readline()
            if not line:
                raise ConnectionError("closed")
            if line[3:4] != b"-":
                got.append(line)
        return got

    await replies(1)
    w.write(b"EHLO bench\r\n")
    await replies(1)
    plain = base64.b64encode(f"\0{KEY}\0{password}".encode()).decode()
    w.write(f"AUTH PLAIN {plain}\r\n".encode())
    (auth,) = await replies(1)
    assert auth.startswith(b"235"), auth
    batch = (b"MAIL FROM:<bench@example.com>\r\nRCPT TO:<success@simulator.amazonses.com>\r\n"
             + f"BDAT {len(MESSAGE)} LAST\r\n".encode() + MESSAGE)
    while time.perf_counter() < deadline:
        w.write(batch)
        got = await replies(3)
        if not got[2].startswith(b"250 Ok"):
            raise RuntimeError(got[2])
        counts[0] += 1
    w.write(b"QUIT\r\n")
    w.close()


async def load(port, password, seconds, sessions=16):
    counts = [0]
    deadline = time.perf_counter() + seconds
    await asyncio.gather(*(session(port, password, deadline, counts) for _ in range(sessions)))
    return counts[0]


def cpu_seconds(pid):
    return sum(cpu_by_thread(pid).values())


def own_cpu():
    t = os.times()
    return t.user + t.system


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/sesame")
    ap.add_argument("--duration", type=int, default=10)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    # The machine's ceiling, in the same run: the HTTP server alone (a 404
    # under /_sesame/) at 16 connections.
    http = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "ceiling.py"), "--bin", args.bin,
                           "--duration", str(args.duration), "--connections", "16"],
                          capture_output=True, text=True, check=True, timeout=args.duration + 120).stdout
    ceiling = float(re.search(r"([\d,]+) req/s", http).group(1).replace(",", ""))
    print(f"ceiling: {http.strip().splitlines()[-1]}")
    d = tempfile.mkdtemp(prefix="sesame-bench-smtp-")
    smtps = free_port()
    p, url, _ = start(args.bin, d, extra=("--dev", "--no-sandbox", "--auto-verify", "--delivery", "capture",
                                           "--smtps-listen", f"127.0.0.1:{smtps}"))
    try:
        import boto3
        boto3.client("sesv2", region_name="us-east-1", endpoint_url=url, aws_access_key_id=KEY,
                     aws_secret_access_key=SECRET).create_email_identity(EmailIdentity="example.com")
        for cmd in (["accounts", "approve"], ["accounts", "set-quota", "--max-24h-send", "-1",
                                                  "--max-send-rate", "1000000"]):
            subprocess.run([args.bin, *cmd, "--account", "000000000000", "--region", "us-east-1", "--data-dir", d],
                           check=True, capture_output=True)
        # The key's SMTP password, as `sesame keys smtp-password` gives it.
        out = subprocess.run([args.bin, "keys", "smtp-password", "--region", "us-east-1", KEY, "--data-dir", d],
                             check=True, capture_output=True, text=True).stdout
        password = out.split("SMTP password:")[1].strip()
        print(f"machine: {os.cpu_count()} CPUs; {args.duration} s each; the load and the server share them")

        # SMTP: 16 sessions.
        s0, c0, t0 = cpu_seconds(p.pid), own_cpu(), time.perf_counter()
        n = asyncio.run(load(smtps, password, args.duration))
        s1, c1, t1 = cpu_seconds(p.pid), own_cpu(), time.perf_counter()
        rate = n / (t1 - t0)
        print(f"SMTP (465, TLS, 16 sessions): {n} messages, {rate:,.0f} msg/s ({rate / ceiling:.1%} of the ceiling); "
              f"server CPU {1e6 * (s1 - s0) / n:.0f} us/msg, client CPU {1e6 * (c1 - c0) / n:.0f} us/msg")

        # The API: SendEmail, 16 connections, wrk.
        body = ("Action=SendEmail&Version=2010-12-01&Source=bench%40example.com"
                "&Destination.ToAddresses.member.1=success%40simulator.amazonses.com"
                "&Message.Subject.Data=Benchmark&Message.Body.Text.Data=Hello+from+the+benchmark")
        lua = signed_lua(url, body)
        s0, t0 = cpu_seconds(p.pid), time.perf_counter()
        out = subprocess.run(["wrk", "-t1", "-c16", f"-d{args.duration}s", "-s", lua, url + "/"],
                             capture_output=True, text=True, timeout=args.duration + 60)
        s1, t1 = cpu_seconds(p.pid), time.perf_counter()
        if "status" in out.stderr:
            sys.exit("the server refused benchmark requests: " + out.stderr[:300])
        m = wrk_requests(out.stdout)
        print(f"API SendEmail (16 connections, wrk): {m} messages, {m / (t1 - t0):,.0f} msg/s "
              f"({m / (t1 - t0) / ceiling:.1%} of the ceiling); "
              f"server CPU {1e6 * (s1 - s0) / m:.0f} us/msg")
        print(f"SMTP / API: {rate / (m / (t1 - t0)) * 100:.0f}%")
    finally:
        stop(p)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
