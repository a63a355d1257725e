#!/usr/bin/env python3
"""Foundation benchmark (issue 2): startup time to healthy, idle RSS, and
GetIdentityVerificationAttributes requests/s at 16 concurrent connections.

Usage: bench/foundation.py [--bin target/release/sesame] [--duration 10]
Needs: the test venv (boto3) and wrk (`apt-get install wrk`). Runs against
loopback only; every run is bounded by --duration.

The load is one SigV4-signed request (signed by botocore, valid for 15
minutes) replayed by wrk: the server verifies the full signature on every
request, as it would for distinct ones.
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
import boto3

KEY, SECRET = "AKIABENCHMARK0000001", "bench-secret-0123456789abcdefghijklmnop"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


METRICS_TOKEN = "bench-metrics-token-0123456789"


def metrics(url):
    """The server's metrics text (the token is the one `start` sets)."""
    req = urllib.request.Request(url + "/_sesame/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read().decode()


def start(binary, data_dir, extra=("--delivery", "capture"), env_extra=None):
    """Starts sesame; by default it captures mail, so that no benchmark
    reaches for the internet."""
    port = free_port()
    # SES's API call rate (1 a second for reads) would measure the limit,
    # not Sesame; metrics are read with METRICS_TOKEN.
    env = dict(os.environ, SESAME_ROOT_ACCESS_KEY_ID=KEY, SESAME_ROOT_SECRET_ACCESS_KEY=SECRET, SESAME_LOG="warn",
               SESAME_API_RATE="off", SESAME_METRICS_TOKEN=METRICS_TOKEN)
    env.update(env_extra or {})
    env = {k: v for k, v in env.items() if v is not None}
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir, *extra], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            with urllib.request.urlopen(url + "/_sesame/health", timeout=1) as r:
                if r.status == 200:
                    return p, url, (time.perf_counter() - t0) * 1000
        except OSError:
            if p.poll() is not None:
                sys.exit("sesame exited during startup")
            time.sleep(0.001)


def signed_lua(url, body, service="ses"):
    """A wrk script replaying one v1 (or SNS) POST signed by botocore
    (valid for 15 minutes); a non-200 answer is reported on stderr as
    `status N`."""
    req = AWSRequest(method="POST", url=url + "/", data=body.encode(),
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(KEY, SECRET), service, "us-east-1").add_auth(req)
    f = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    f.write('wrk.method = "POST"\n')
    f.write(f"wrk.body = [[{body}]]\n")
    for k, v in req.headers.items():
        if k.lower() != "host":
            f.write(f'wrk.headers["{k}"] = "{v}"\n')
    f.write('function response(status, headers, body)\n  if status ~= 200 then io.stderr:write("status " .. status .. "\\n") end\nend\n')
    f.close()
    return f.name


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wrk_requests(out):
    """How many requests wrk's summary says it completed."""
    return next(int(l.split()[0]) for l in out.splitlines() if "requests in" in l)


def cpu_by_thread(pid):
    """CPU seconds (user + system) used so far by the process's threads,
    grouped by name: the store's writer thread, its checkpoint thread, and
    everything else (the async runtime: HTTP, the delivery engine, signing
    on the blocking pool)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"writer": 0.0, "checkpoint": 0.0, "runtime": 0.0}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            st = open(f"/proc/{pid}/task/{t}/stat").read()
        except OSError:
            continue
        name = st[st.index("(") + 1:st.rindex(")")]
        f = st[st.rindex(")") + 2:].split()
        group = ("writer" if name.startswith("sesame-writer")
                 else "checkpoint" if name.startswith("sesame-checkpoi") else "runtime")
        out[group] += (int(f[11]) + int(f[12])) / tick
    return out


def postgres_cpu():
    """CPU seconds (user + system) used so far by this machine's PostgreSQL
    server processes (every process named postgres): the database's share
    of a run on PostgreSQL, when it runs on the same cores."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            st = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        if st[st.index("(") + 1:st.rindex(")")] != "postgres":
            continue
        f = st[st.rindex(")") + 2:].split()
        total += (int(f[11]) + int(f[12])) / tick
    return total


def throwaway_postgres():
    """A PostgreSQL server for a benchmark: SESAME_TEST_POSTGRES if set, else
    a throwaway cluster from scripts/pg.sh. (admin URL, stop function)."""
    if os.environ.get("SESAME_TEST_POSTGRES"):
        return os.environ["SESAME_TEST_POSTGRES"], lambda: None
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([os.path.join(root, "scripts", "pg.sh")], capture_output=True, text=True, check=True).stdout
    env = dict(line.split("=", 1) for line in out.split())
    return env["SESAME_TEST_POSTGRES"], lambda: subprocess.run(
        [os.path.join(root, "scripts", "pg.sh"), "stop", env["PG_DIR"]], check=False)


def new_database(admin):
    """A new empty database on the server at `admin`; its URL."""
    import uuid

    name = "sesame_bench_" + uuid.uuid4().hex[:10]
    subprocess.run(["psql", admin, "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return admin.split("?")[0].rsplit("/", 1)[0] + "/" + name


def steal_share():
    """The machine's CPU counters (total, stolen) from /proc/stat; the
    difference of two readings says how much of the time the hypervisor
    gave to others."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(f), f[7]


def cpu_per_message(before, after, messages):
    """CPU microseconds per message by thread group."""
    return {k: (after[k] - before[k]) / max(messages, 1) * 1e6 for k in after}


def cpu_report(before, after, messages, steal0, steal1):
    """One line: CPU microseconds per message by thread group, and the
    share of the machine stolen meanwhile."""
    per = cpu_per_message(before, after, messages)
    stolen = (steal1[1] - steal0[1]) / max(steal1[0] - steal0[0], 1) * 100
    return (f"CPU per message: runtime {per['runtime']:.0f} us, writer {per['writer']:.0f} us, "
            f"checkpoints {per['checkpoint']:.0f} us; "
            f"{stolen:.0f}% of the machine stolen by the hypervisor meanwhile")


def stop(p):
    p.terminate()
    p.wait(timeout=10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/sesame")
    ap.add_argument("--duration", type=int, default=10)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")

    # Startup: fresh data dir (creates and migrates the store) and existing one.
    fresh, warm = [], []
    d = tempfile.mkdtemp(prefix="sesame-bench-")
    for i in range(10):
        dd = tempfile.mkdtemp(prefix="sesame-bench-")
        p, _, ms = start(args.bin, dd)
        fresh.append(ms)
        stop(p)
        shutil.rmtree(dd)
        p, _, ms = start(args.bin, d)
        warm.append(ms)
        stop(p)

    p, url, _ = start(args.bin, d)
    time.sleep(1)
    idle_rss = rss_mb(p.pid)

    ses = boto3.client("ses", endpoint_url=url, region_name="us-east-1", aws_access_key_id=KEY, aws_secret_access_key=SECRET)
    ses.verify_email_identity(EmailAddress="bench@example.com")
    ses.verify_domain_identity(Domain="bench.example.com")
    body = "Action=GetIdentityVerificationAttributes&Version=2010-12-01&Identities.member.1=bench%40example.com&Identities.member.2=bench.example.com"
    lua = signed_lua(url, body)
    out = subprocess.run(["wrk", "-t1", "-c16", f"-d{args.duration}s", "--latency", "-s", lua, url + "/"],
                         capture_output=True, text=True, timeout=args.duration + 60)
    loaded_rss = rss_mb(p.pid)
    stop(p)
    shutil.rmtree(d)
    if "status" in out.stderr:
        sys.exit("the server refused benchmark requests:\n" + out.stderr[:500])

    print(f"startup to healthy, fresh data dir: median {statistics.median(fresh):.1f} ms, max {max(fresh):.1f} ms (10 runs)")
    print(f"startup to healthy, existing data dir: median {statistics.median(warm):.1f} ms, max {max(warm):.1f} ms (10 runs)")
    print(f"idle RSS after startup: {idle_rss:.1f} MB")
    print(f"RSS after the load: {loaded_rss:.1f} MB")
    print("GetIdentityVerificationAttributes, wrk -t1 -c16:")
    print(out.stdout)


if __name__ == "__main__":
    main()
