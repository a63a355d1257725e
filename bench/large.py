#!/usr/bin/env python3
"""Large messages through delivery: --count messages of --size-mb MB each,
sent by --senders (8) concurrent SendEmail (v2, Raw) calls, each to one recipient at
each of --domains domains, relayed to the loopback sink. Prints how long
until the sink had every transaction and Sesame's peak RSS (sampled every
50 ms), which is what the delivery memory budget and the shared message
bytes bound.

Usage: bench/large.py [--bin target/release/sesame]
                      [--sink target/release/examples/smtp_sink]
                      [--count 24] [--size-mb 8] [--domains 8]
                      [--senders 8] [--delivery-memory MIB] [--request-memory MIB]
                      [--no-chunking]
  --no-chunking has the sink offer PIPELINING without CHUNKING, so that
  messages go with DATA, dot-stuffed, instead of BDAT.
Needs: the test venv (boto3). Loopback only; bounded by --count and 120 s.
"""
import argparse
import os
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(__file__))
from delivery import lift_quota, start_relaying, start_sink  # noqa: E402
from foundation import KEY, SECRET, rss_mb, stop  # noqa: E402

import boto3  # noqa: E402
import botocore.config  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/sesame")
    ap.add_argument("--sink", default="target/release/examples/smtp_sink")
    ap.add_argument("--count", type=int, default=24)
    ap.add_argument("--size-mb", type=float, default=8)
    ap.add_argument("--domains", type=int, default=8)
    ap.add_argument("--senders", type=int, default=8)
    ap.add_argument("--delivery-memory", type=int, default=0, help="MiB; Sesame's default without it")
    ap.add_argument("--request-memory", type=int, default=0, help="MiB; Sesame's default without it")
    ap.add_argument("--no-chunking", action="store_true", help="the sink offers no CHUNKING: DATA")
    args = ap.parse_args()

    sink, port, got = start_sink(args.sink, *(["--no-chunking"] if args.no_chunking else []))
    extra = []
    if args.delivery_memory:
        extra += ["--delivery-memory", str(args.delivery_memory)]
    if args.request_memory:
        extra += ["--request-memory", str(args.request_memory)]
    p, url, d, conf = start_relaying(args.bin, port, "sesame-large-", extra)
    try:
        ses = boto3.client("sesv2", region_name="us-east-1", endpoint_url=url,
                           aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                           config=botocore.config.Config(max_pool_connections=args.senders))
        ses.create_email_identity(EmailIdentity="large.example.com")
        lift_quota(args.bin, conf, d, 100000)
        line = "x" * 76 + "\r\n"
        body = line * int(args.size_mb * 1024 * 1024 / len(line))
        raw = ("From: a@large.example.com\r\nTo: r@example.org\r\nSubject: large\r\n\r\n" + body).encode()
        to = [f"r@d{k}.example.org" for k in range(args.domains)]
        idle = rss_mb(p.pid)
        peak, done = [idle], [False]

        def watch():
            while not done[0]:
                peak[0] = max(peak[0], rss_mb(p.pid))
                time.sleep(0.05)

        threading.Thread(target=watch, daemon=True).start()
        t0 = time.time()

        def send(_):
            ses.send_email(FromEmailAddress="a@large.example.com", Destination={"ToAddresses": to},
                           Content={"Raw": {"Data": raw}})

        with ThreadPoolExecutor(args.senders) as ex:
            list(ex.map(send, range(args.count)))
        want = args.count * args.domains
        while got[0] < want and time.time() - t0 < 120:
            time.sleep(0.05)
        done[0] = True
        print(f"{args.count} messages of {args.size_mb:g} MB to {args.domains} domains, {args.senders} at once, "
              f"{'DATA' if args.no_chunking else 'BDAT'}: "
              f"{got[0]} of {want} transactions at the sink in {time.time() - t0:.1f}s; "
              f"RSS idle {idle:.0f} MB, peak {peak[0]:.0f} MB")
    finally:
        stop(p)
        sink.terminate()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
