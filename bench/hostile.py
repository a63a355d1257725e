#!/usr/bin/env python3
"""Hostile inputs against a release build (issue 20): for each, a fresh
server, the input, what the server answered, how long it took, whether the
process survived, and its peak RSS (VmHWM) afterwards.

Usage: bench/hostile.py [--bin target/release/sesame] [--label NAME]
Loopback only; every input is bounded in count and time. Run it against
the build before a change and after it to compare (a build that dies on an
input says so).
"""
import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from foundation import KEY, SECRET, start, stop  # noqa: E402

import boto3  # noqa: E402
import botocore.config  # noqa: E402
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

FORM = "application/x-www-form-urlencoded; charset=utf-8"


def peak_mb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def client(url, service):
    return boto3.client(service, region_name="us-east-1", endpoint_url=url, aws_access_key_id=KEY,
                        aws_secret_access_key=SECRET,
                        config=botocore.config.Config(retries={"total_max_attempts": 1}, read_timeout=120))


def raw(url, body, headers, timeout=120):
    import http.client
    host, port = url.split("//")[1].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    c.request("POST", "/", body=body, headers=headers)
    r = c.getresponse()
    out = (r.status, r.read()[:200])
    c.close()
    return out


def signed_headers(url, body):
    req = AWSRequest(method="POST", url=url + "/", data=body, headers={"Content-Type": FORM})
    SigV4Auth(Credentials(KEY, SECRET), "ses", "us-east-1").add_auth(req)
    return dict(req.headers.items())


def outcome(f):
    try:
        return "ok: " + str(f())[:120]
    except Exception as e:  # noqa: BLE001 - what the server said is the result
        return type(e).__name__ + ": " + str(e)[:160]


def nested_template(url):
    ses = client(url, "ses")
    text = "{{#if a}}" * 2000 + "x" + "{{/if}}" * 2000
    r1 = outcome(lambda: ses.create_template(Template={"TemplateName": "deep", "SubjectPart": "s", "TextPart": text}))
    r2 = outcome(lambda: ses.test_render_template(TemplateName="deep", TemplateData='{"a": true}'))
    return f"create: {r1} | render: {r2}"


def stalled_connections(url):
    port = int(url.rsplit(":", 1)[1])
    held = []
    for i in range(50):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /v2/email/identities HTTP/1.1\r\nHost: x\r\nContent-Length: 41943040\r\n\r\n"
                  if i % 2 else b"POST / HTTP/1.1\r\nHost: x\r\n")
        held.append(s)
    t0 = time.perf_counter()
    r = outcome(lambda: client(url, "sesv2").list_email_identities(PageSize=1))
    took = time.perf_counter() - t0
    for s in held:
        s.close()
    return f"signed call with 50 stalled connections held: {took * 1000:.0f} ms, {r}"


def tampered_body(url):
    original = b"Action=ListIdentities&Version=2010-12-01"
    h = signed_headers(url, original)
    h["X-Amz-Content-SHA256"] = hashlib.sha256(original).hexdigest()
    evil = urllib.parse.urlencode({"Action": "SendEmail", "Version": "2010-12-01", "Source": "a@example.com",
                                   "Destination.ToAddresses.member.1": "victim@example.org",
                                   "Message.Subject.Data": "s", "Message.Body.Text.Data": "b"}).encode()
    h.pop("Content-Length", None)
    return "status %s %s" % raw(url, evil, h)


def verification_spam(url):
    ses = client(url, "ses")
    ok = 0
    for i in range(40):
        try:
            ses.verify_email_identity(EmailAddress=f"v{i}@example.org")
            ok += 1
        except Exception:  # noqa: BLE001
            pass
    return f"{ok} of 40 VerifyEmailIdentity calls accepted in a burst"


def bulk_100k(url):
    parts = [urllib.parse.urlencode({"Action": "SendBulkTemplatedEmail", "Version": "2010-12-01",
                                     "Source": "a@example.com", "Template": "t", "DefaultTemplateData": "{}"})]
    parts += [f"Destinations.member.{i}.Destination.ToAddresses.member.1=x{i}%40example.org"
              for i in range(1, 100_001)]
    body = "&".join(parts).encode()
    t0 = time.perf_counter()
    status, text = raw(url, body, signed_headers(url, body))
    return f"{len(body) / 1e6:.1f} MB request: status {status} in {(time.perf_counter() - t0) * 1000:.0f} ms"


def nested_each(url):
    ses = client(url, "ses")
    outcome(lambda: ses.create_template(Template={"TemplateName": "loops", "SubjectPart": "s",
                                                  "TextPart": "{{#each a}}{{#each ../a}}x{{/each}}{{/each}}"}))
    data = json.dumps({"a": list(range(8000))})
    t0 = time.perf_counter()
    r = outcome(lambda: ses.test_render_template(TemplateName="loops", TemplateData=data))
    return f"render in {(time.perf_counter() - t0) * 1000:.0f} ms: {r}"


# (what, how, SES's API call rate on): the rate is off where an input needs
# several calls to reach what it tests, on where it is what is tested.
INPUTS = [
    ("2,000 nested {{#if}} (create, render)", nested_template, False),
    ("50 stalled unauthenticated connections", stalled_connections, True),
    ("a signature resent with another body", tampered_body, True),
    ("40 verification emails in a burst", verification_spam, True),
    ("SendBulkTemplatedEmail, 100,000 destinations", bulk_100k, True),
    ("nested {{#each}} over 8,000 values", nested_each, False),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/sesame")
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    print(f"# hostile inputs against {args.bin} {args.label}")
    for name, f, rate in INPUTS:
        d = tempfile.mkdtemp(prefix="sesame-hostile-")
        # foundation turns the rate off for throughput benchmarks; None
        # leaves it at its default.
        p, url, _ = start(args.bin, d, env_extra={"SESAME_API_RATE": None} if rate else None)
        base = peak_mb(p.pid)
        t0 = time.perf_counter()
        try:
            result = f(url)
        except Exception as e:  # noqa: BLE001
            result = f"{type(e).__name__}: {e}"[:200]
        took = time.perf_counter() - t0
        time.sleep(0.2)
        alive = p.poll() is None
        peak = peak_mb(p.pid)
        print(f"- {name} (API rate {'on' if rate else 'off'}): {result}; {took:.2f} s; "
              f"{'alive' if alive else f'DIED (exit {p.returncode})'}; peak RSS {peak:.0f} MB (idle {base:.0f} MB)")
        if alive:
            stop(p)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
