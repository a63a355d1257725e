#!/usr/bin/env python3
"""The machine's HTTP ceiling for one build: wrk at 16 connections against
the cheapest answer the server gives (a 404 under /_sesame/), the same wrk
line bench/send.py uses (16 connections unless --connections says). Run it just before bench/send.py to state a
SendEmail figure as a share of what the machine serves at all.

Usage: bench/ceiling.py [--bin target/release/sesame] [--duration 10] [--connections 16]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from foundation import start, stop, wrk_requests  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/sesame")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="sesame-ceiling-")
    p, url, _ = start(args.bin, d)
    try:
        out = subprocess.run(["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency", url + "/_sesame/none"],
                             capture_output=True, text=True, timeout=args.duration + 60).stdout
        n = wrk_requests(out)
        print(f"HTTP ceiling, {args.connections} connection(s), {args.duration} s: {n / args.duration:,.0f} req/s (404 under /_sesame/)")
    finally:
        stop(p)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
