#!/usr/bin/env python3
"""Feedback benchmark (issue 22): SNS notifications delivered per second to a
loopback HTTP endpoint, signed; and SendEmail/s at 16 connections with a
configuration set that publishes every event to SNS, against the same run
without one. The machine's RSA ceiling (`openssl speed rsa2048`, one core)
is measured in the same run, since every notification is signed.

Usage: bench/feedback.py [--bin target/release/sesame] [--messages 3000] [--duration 10]
Needs: the test venv (boto3), wrk and openssl. Loopback only; bounded by
--messages and --duration.
"""
import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from foundation import KEY, SECRET, signed_lua, start, stop, wrk_requests  # noqa: E402

import boto3  # noqa: E402
import botocore.config  # noqa: E402


class Endpoint:
    """A minimal asyncio HTTP/1.1 endpoint that answers 200 and records
    when each POST arrived (and its SNS message type)."""

    def __init__(self):
        self.times = []
        self.bodies = []
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def handle(reader, writer):
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                    body = await reader.readexactly(int(m.group(1))) if m else b""
                    self.times.append(time.perf_counter())
                    if len(self.bodies) < 4 or b"SubscriptionConfirmation" in head:
                        self.bodies.append((head, body))
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        async def serve():
            self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()
            await self.server.serve_forever()

        threading.Thread(target=lambda: self.loop.run_until_complete(serve()), daemon=True).start()
        ready.wait()
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def confirmation_url(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for head, body in self.bodies:
                m = re.search(rb'"SubscribeURL":"([^"]+)"', body)
                if m:
                    return m.group(1).decode().replace("\\u0026", "&")
            time.sleep(0.05)
        sys.exit("no subscription confirmation arrived")


def client(url, service):
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id=KEY,
                        aws_secret_access_key=SECRET,
                        config=botocore.config.Config(retries={"max_attempts": 0}))


def subscribe(url, endpoint, name):
    import urllib.request
    sns = client(url, "sns")
    arn = sns.create_topic(Name=name)["TopicArn"]
    sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=endpoint.url)
    with urllib.request.urlopen(endpoint.confirmation_url(), timeout=5):
        pass
    endpoint.bodies.clear()
    return arn


def sns_publish_lua(url, arn):
    body = f"Action=Publish&Version=2010-03-31&TopicArn={arn.replace(':', '%3A')}&Message=benchmark+notification"
    return signed_lua(url, body, service="sns")


def wrk(url, lua, conns, seconds):
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", lua, url + "/"],
                         capture_output=True, text=True, timeout=seconds + 120)
    if "status" in out.stderr:
        sys.exit("the server refused benchmark requests: " + out.stderr[:300])
    rps = float(next(l.split()[1] for l in out.stdout.splitlines() if l.startswith("Requests/sec")))
    p99 = next(l.split()[1] for l in out.stdout.splitlines() if l.strip().startswith("99%"))
    return rps, p99, wrk_requests(out.stdout)


def openssl_rsa_signs():
    out = subprocess.run(["openssl", "speed", "-seconds", "3", "rsa2048"], capture_output=True, text=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("rsa 2048") or l.startswith("rsa  2048"))
    return float(line.split()[-2])


def wait_count(endpoint, n, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline and len(endpoint.times) < n:
        time.sleep(0.05)
    return len(endpoint.times)


def send_lua(url, cs):
    body = ("Action=SendEmail&Version=2010-12-01&Source=bench%40example.com"
            "&Destination.ToAddresses.member.1=rcpt%40example.org"
            "&Message.Subject.Data=Benchmark&Message.Body.Text.Data=Hello+from+the+benchmark")
    if cs:
        body += f"&ConfigurationSetName={cs}"
    return signed_lua(url, body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/sesame")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--messages", type=int, default=3000)
    a = ap.parse_args()
    print(f"# machine: {os.cpu_count()} cores; binary {a.bin}")
    ceiling = openssl_rsa_signs()
    print(f"ceiling: openssl speed rsa2048: {ceiling:,.0f} signatures/s on one core")
    http = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "ceiling.py"), "--bin", a.bin,
                           "--duration", str(a.duration), "--connections", "16"],
                          capture_output=True, text=True, timeout=a.duration + 120).stdout
    a.http_ceiling = float(re.search(r"([\d,]+) req/s", http).group(1).replace(",", ""))
    print(f"ceiling: {http.strip().splitlines()[-1]}")

    # 1. Notifications delivered per second, signed, by signature version.
    for version in ("1", "2"):
        d = tempfile.mkdtemp(prefix="sesame-bench-feedback-")
        p, url, _ = start(a.bin, d, extra=("--dev", "--auto-verify", "--no-sandbox", "--delivery-allow-private"))
        try:
            endpoint = Endpoint()
            arn = subscribe(url, endpoint, "bench")
            client(url, "sns").set_topic_attributes(TopicArn=arn, AttributeName="SignatureVersion",
                                                    AttributeValue=version)
            lua = sns_publish_lua(url, arn)
            # Publish at 16 connections until --messages are accepted.
            t0 = time.perf_counter()
            published = 0
            while published < a.messages and time.perf_counter() - t0 < a.duration * 3:
                _, _, n = wrk(url, lua, 16, 2)
                published += n
            got = wait_count(endpoint, published, 300)
            times = sorted(endpoint.times)
            span = times[-1] - times[0] if len(times) > 1 else float("nan")
            rate = (got - 1) / span if span > 0 else float("nan")
            print(f"notifications, SignatureVersion {version}: {published} published, {got} delivered signed "
                  f"in {span:.2f} s: {rate:,.0f} notifications/s = {rate / ceiling:.1%} of the openssl "
                  f"RSA-2048 sign ceiling")
        finally:
            stop(p)
            shutil.rmtree(d, ignore_errors=True)

    # 2. SendEmail/s at 16 connections, with and without a set publishing
    # every event, and a set publishing to a topic without subscribers.
    for version in ("1", "2"):
        send_with_events(a, version)


def send_with_events(a, version):
    d = tempfile.mkdtemp(prefix="sesame-bench-feedback-")
    p, url, _ = start(a.bin, d, extra=("--dev", "--auto-verify", "--no-sandbox", "--delivery-allow-private"))
    try:
        endpoint = Endpoint()
        arn = subscribe(url, endpoint, "events")
        sns = client(url, "sns")
        sns.set_topic_attributes(TopicArn=arn, AttributeName="SignatureVersion", AttributeValue=version)
        sesv2 = client(url, "sesv2")
        sesv2.create_email_identity(EmailIdentity="example.com")
        # No quota in the way: the figure is Sesame's, not the send rate's.
        subprocess.run([a.bin, "accounts", "approve", "--account", "000000000000", "--region", "us-east-1",
                        "--data-dir", d], check=True, capture_output=True)
        subprocess.run([a.bin, "accounts", "set-quota", "--account", "000000000000", "--region", "us-east-1",
                        "--max-24h-send", "-1", "--max-send-rate", "1000000000", "--data-dir", d],
                       check=True, capture_output=True)
        every = ["SEND", "REJECT", "BOUNCE", "COMPLAINT", "DELIVERY", "OPEN", "CLICK", "RENDERING_FAILURE",
                 "DELIVERY_DELAY"]
        for name, topic in (("all-events", arn), ("unheard", sns.create_topic(Name="quiet")["TopicArn"])):
            sesv2.create_configuration_set(ConfigurationSetName=name)
            sesv2.create_configuration_set_event_destination(
                ConfigurationSetName=name, EventDestinationName="sns",
                EventDestination={"Enabled": True, "SnsDestination": {"TopicArn": topic}, "MatchingEventTypes": every})
        wrk(url, send_lua(url, None), 16, 2)  # warm-up
        time.sleep(2)
        plain = wrk(url, send_lua(url, None), 16, a.duration)
        unheard = wrk(url, send_lua(url, "unheard"), 16, a.duration)
        time.sleep(2)
        before = len(endpoint.times)
        with_set = wrk(url, send_lua(url, "all-events"), 16, a.duration)
        expected = before + 2 * with_set[2]
        t = time.perf_counter()
        got = wait_count(endpoint, expected, 600)
        print(f"SendEmail/s at 16 connections, topic SignatureVersion {version}:")
        share = lambda r: f"{r / a.http_ceiling:.1%} of the HTTP ceiling"  # noqa: E731
        print(f"  without a configuration set: {plain[0]:,.0f} req/s, p99 {plain[1]} ({share(plain[0])})")
        print(f"  through a set publishing to a topic without subscribers: "
              f"{unheard[0]:,.0f} req/s, p99 {unheard[1]} ({unheard[0] / plain[0] - 1:+.1%}; {share(unheard[0])})")
        print(f"  through a set publishing every event to a subscribed topic: "
              f"{with_set[0]:,.0f} req/s, p99 {with_set[1]} ({with_set[0] / plain[0] - 1:+.1%}; {share(with_set[0])})")
        print(f"  its {with_set[2]} sends made {got - before} notifications (Send + Delivery each); "
              f"the last arrived {time.perf_counter() - t:.1f} s after the load ended")
    finally:
        stop(p)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
