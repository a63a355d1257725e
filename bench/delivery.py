#!/usr/bin/env python3
"""End-to-end delivery benchmark (issue 4): SendEmail accepted → DKIM-signed
(RSA-2048, Easy DKIM) → relayed over SMTP to a loopback sink, sustained for
--duration seconds, with the sink's receive rate, the queue depth and
sesame's RSS sampled every --every seconds.

Usage: bench/delivery.py [--bin target/release/sesame]
                         [--sink target/release/examples/smtp_sink]
                         [--duration 60] [--conns 16] [--rate N] [--no-dkim]
                         [--key-length 1024|2048] [--backlog] [--domains N] [--target 2500]
  --rate offers SendEmail at that many requests/s (wrk2-style pacing: the
  Lua script gives each request the next slot of a fixed schedule, timed
  with clock_gettime through LuaJIT's FFI), so that the queue shows whether
  delivery keeps up with that rate; without it wrk offers as much as it
  can, and the delivered rate includes draining what was left queued.
  --key-length 1024 gives the identity a 1024-bit Easy DKIM key (SES's
  RSA_1024_BIT), which Sesame signs with the `rsa` crate rather than
  aws-lc, to measure that path.
  --no-dkim turns the identity's signing off, so that a run measures what a
  message costs besides its RSA signature.
  --target N (2500) is the rate the last line judges the machine against:
  one RSA signature a message at the better ceiling reading, plus what the
  run measured a message for the rest of Sesame, wrk and the sink.
  --domains N sends each message to one recipient at each of N domains
  (all relayed to the sink): N SMTP transactions a message, and one DKIM
  signature, which the domains' deliveries share.
  --database postgres://… runs Sesame on that PostgreSQL database;
  --database postgres alone on a new database of SESAME_TEST_POSTGRES's
  server, or of a throwaway cluster (scripts/pg.sh). The PostgreSQL
  server's CPU a message is reported with Sesame's.
  --backlog stops the sink (SIGSTOP) while wrk sends, so that what is
  accepted waits in the queue, then lets it go (SIGCONT) and measures how
  fast that backlog drains through the queue's claim path, with the CPU
  each drained message cost.
Needs: the test venv (boto3) and wrk. Loopback only; bounded by --duration.
"""
import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from foundation import KEY, SECRET, cpu_by_thread, cpu_per_message, cpu_report, free_port, metrics, new_database, postgres_cpu, rss_mb, signed_lua, start, steal_share, stop, throwaway_postgres, wrk_requests  # noqa: E402

import boto3  # noqa: E402

DOMAIN = "bench.example.com"


def lua_for(url, rate, domains=1):
    to = "".join(f"&Destination.ToAddresses.member.{n}=rcpt%40sink-{n}.example.org"
                 for n in range(1, domains + 1))
    body = ("Action=SendEmail&Version=2010-12-01&Source=sender%40bench.example.com" + to +
            "&Message.Subject.Data=Benchmark&Message.Body.Text.Data=Hello+from+the+delivery+benchmark")
    path = signed_lua(url, body)
    if rate:
        with open(path, "a") as f:
            f.write(PACING.replace("RATE", str(rate)))
    return path


# wrk calls delay() before writing each request on any connection: each
# call takes the next slot of a schedule `1000 / RATE` ms apart and waits
# for it. A schedule more than a second behind (the server could not keep
# up) restarts from now rather than bursting to catch up.
PACING = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } sesame_timespec;
int clock_gettime(int clk_id, sesame_timespec *tp);
]]
local ts = ffi.new("sesame_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local interval = 1000 / RATE
local next_at = nil
function delay()
  local t = now_ms()
  if next_at == nil or next_at < t - 1000 then next_at = t end
  next_at = next_at + interval
  local d = next_at - t
  if d < 1 then return 0 end
  return math.floor(d)
end
"""


def rsa_signatures(bits=2048, env=None):
    """What RSA signing (2048-bit unless told) costs on this machine now, by
    speed`: milliseconds a signature on one core, and signatures a second
    on all cores at once (`-multi`), the ceiling for an end-to-end rate in
    which every message is signed once. The machine's speed varies, so a
    run is read against these. (None, None) without openssl."""
    if not shutil.which("openssl"):
        return None, None

    def speed(*extra):
        out = subprocess.run(["openssl", "speed", "-seconds", "2", *extra, f"rsa{bits}"], env=env,
                             capture_output=True, text=True, timeout=60).stdout
        for line in out.splitlines():
            if line.startswith(f"rsa {bits} bits"):
                return line.split()
        return None

    one = speed()
    every = speed("-multi", str(os.cpu_count() or 1))
    ms = float(one[3].rstrip("s")) * 1000 if one else None
    ceiling = float(every[5]) if every else None
    return ms, ceiling


def reach(target, ceilings, sesame_us, harness_us):
    """Whether `target` messages/s fits in this machine at all: one RSA
    signature a message at the better ceiling reading, plus what this run
    measured a message for the rest of Sesame and for wrk and the sink, all
    on the same cores. (The rest costs less a message at higher rates, down
    to what `--no-dkim` at full speed shows.)"""
    cores = os.cpu_count() or 1
    rsa_us = cores / max(ceilings) * 1e6
    rest_us = max(sum(sesame_us.values()) - rsa_us, 0)
    harness = sum(harness_us.values())
    budget = cores / target * 1e6
    need = rsa_us + rest_us + harness
    verdict = "within reach" if need <= budget else "out of reach"
    return (f"at {target:,} messages/s {cores} cores give {budget:.0f} us a message; RSA alone takes "
            f"{rsa_us:.0f} us at the better ceiling reading, the rest of Sesame {rest_us:.0f} us and "
            f"{' and '.join(harness_us)} {harness:.0f} us as this run measured: {need:.0f} us, {verdict} on this machine")


def start_sink(path, *flags):
    """The loopback SMTP sink: (process, port, [messages received so far]).
    `flags` go to the sink (`--no-chunking`)."""
    port = free_port()
    sink = subprocess.Popen([path, str(port), *flags], stdout=subprocess.PIPE, text=True)
    received = [0]

    def read_sink():
        for line in sink.stdout:
            received[0] = int(line)

    threading.Thread(target=read_sink, daemon=True).start()
    return sink, port, received


def start_relaying(binary, sink_port, prefix, extra=(), database=None):
    """Sesame out of the sandbox, relaying to the sink: (process, URL, data
    directory, config file). With `database`, on that PostgreSQL database
    (the config file names it, so operator commands use it too)."""
    d = tempfile.mkdtemp(prefix=prefix)
    conf = os.path.join(d, "sesame.toml")
    with open(conf, "w") as f:
        f.write("no_sandbox = true\n")
        if database:
            f.write(f'database = "{database}"\nnode_name = "bench-1"\n')
    args = ("--config", conf, "--auto-verify", "--delivery", "relay",
            "--relay", f"smtp://127.0.0.1:{sink_port}?tls=none", *extra)
    p, url, _ = start(binary, d, args)
    return p, url, d, conf


def lift_quota(binary, conf, d, rate):
    """The dev account's send rate raised to `rate` a second, no daily cap."""
    subprocess.run([binary, "--config", conf, "--data-dir", d, "accounts", "set-quota",
                    "--account", "000000000000", "--region", "us-east-1",
                    "--max-send-rate", str(rate), "--max-24h-send", "-1"], check=True,
                   capture_output=True)


def queue_depth(url):
    for line in metrics(url).splitlines():
        if line.startswith('sesame_queue_depth{state="queued"}'):
            return int(float(line.split()[-1]))
    return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/sesame")
    ap.add_argument("--sink", default="target/release/examples/smtp_sink")
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--rate", type=int, default=0)
    ap.add_argument("--backlog", action="store_true",
                    help="accept with the sink stopped, then measure draining the queue")
    ap.add_argument("--key-length", type=int, choices=(1024, 2048), default=2048,
                    help="the Easy DKIM key's length; 1024-bit keys are signed by the rsa crate, not aws-lc")
    ap.add_argument("--no-dkim", action="store_true",
                    help="turn the identity's DKIM signing off, to measure what a message costs besides RSA")
    ap.add_argument("--target", type=int, default=2500,
                    help="messages/s to judge this machine against (issue 4's target)")
    ap.add_argument("--database", default=None,
                    help="run on PostgreSQL: a postgres:// URL, or `postgres` for a new database")
    ap.add_argument("--domains", type=int, default=1,
                    help="recipient domains a message (one recipient at each, one SMTP transaction each)")
    args = ap.parse_args()
    per = max(args.domains, 1)
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")

    bits = args.key_length
    stop_pg = lambda: None  # noqa: E731
    if args.database == "postgres":
        admin, stop_pg = throwaway_postgres()
        args.database = new_database(admin)
    sink, sink_port, received = start_sink(args.sink)
    p, url, d, conf = start_relaying(args.bin, sink_port, "sesame-bench-", database=args.database)
    if args.database:
        print("store: PostgreSQL (one node)")
    # `serve` may have started itself again with aws-lc's ADX bit masked
    # (--rsa-path): read OpenSSL's speed with the same mask.
    mask = next((v for v in open(f"/proc/{p.pid}/environ", "rb").read().split(b"\0")
                 if v.startswith(b"OPENSSL_ia32cap=")), None)
    speed_env = dict(os.environ)
    if mask:
        speed_env["OPENSSL_ia32cap"] = mask.split(b"=", 1)[1].decode()
        print(f"sesame signs with aws-lc's AVX2 RSA code ({mask.decode()}); openssl is read with the same mask")
    rsa_ms, ceiling = rsa_signatures(bits, speed_env)
    if rsa_ms:
        print(f"RSA-{bits} signing on this machine now (openssl speed, one core): {rsa_ms:.3f} ms a signature")
    if ceiling:
        print(f"RSA-{bits} ceiling now (openssl speed -multi {os.cpu_count()}): {ceiling:,.0f} signatures/s on all cores")
    try:
        ses = boto3.client("sesv2", region_name="us-east-1", endpoint_url=url,
                           aws_access_key_id=KEY, aws_secret_access_key=SECRET)
        ses.create_email_identity(EmailIdentity=DOMAIN,
                                  DkimSigningAttributes={"NextSigningKeyLength": f"RSA_{bits}_BIT"})
        if args.no_dkim:
            ses.put_email_identity_dkim_attributes(EmailIdentity=DOMAIN, SigningEnabled=False)
        lift_quota(args.bin, conf, d, 1000000)
        lua = lua_for(url, args.rate, per)
        if args.backlog:
            sink.send_signal(signal.SIGSTOP)
        c0, s0 = cpu_by_thread(p.pid), steal_share()
        pg0 = postgres_cpu()
        k0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        sk0 = sum(cpu_by_thread(sink.pid).values())
        wrk = subprocess.Popen(["wrk", "-t1", f"-c{args.conns}", f"-d{args.duration}s", "-s", lua, url + "/"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        print(f"{'t (s)':>6} {'received':>9} {'rcv/s':>7} {'queued':>7} {'RSS MB':>7}")
        t0 = time.time()
        last_n, last_t = received[0], t0
        samples = []
        while True:
            # Wakes as soon as wrk ends, so that the time it took is not
            # rounded up to the next sample.
            try:
                wrk.wait(timeout=args.every)
                break
            except subprocess.TimeoutExpired:
                pass
            now, n = time.time(), received[0]
            rate = (n - last_n) / (now - last_t)
            q = queue_depth(url)
            rss = rss_mb(p.pid)
            samples.append((now - t0, n, rate, q, rss))
            print(f"{now - t0:6.0f} {n:9d} {rate:7.0f} {q:7d} {rss:7.1f}", flush=True)
            last_n, last_t = n, now
        out, err = wrk.communicate()
        k1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        wrk_cpu = (k1.ru_utime - k0.ru_utime) + (k1.ru_stime - k0.ru_stime)
        if "status" in err:
            sys.exit("the server refused benchmark requests: " + err[:300])
        rps = next(l.split()[1] for l in out.splitlines() if l.startswith("Requests/sec"))
        sent = wrk_requests(out)
        # Drain: how long until the sink has everything that was accepted.
        drain0 = time.time()
        if args.backlog:
            backlog, held = queue_depth(url), received[0]
            b0, bs0 = cpu_by_thread(p.pid), steal_share()
            sink.send_signal(signal.SIGCONT)
        while received[0] < sent * per and time.time() - drain0 < 120:
            time.sleep(0.05)
        if args.backlog:
            took = time.time() - drain0
            drained = received[0] - held
            print(f"backlog: {backlog} queued when the sink was let go; {drained} drained in {took:.1f}s: "
                  f"{drained / took:,.0f} messages/s")
            print("while draining: " + cpu_report(b0, cpu_by_thread(p.pid), drained, bs0, steal_share()))
        elapsed = time.time() - t0
        c1, s1 = cpu_by_thread(p.pid), steal_share()
        pg1 = postgres_cpu()
        print(f"accepted {sent} SendEmail ({float(rps):,.0f}/s over {args.duration}s); "
              f"received {received[0]} at the sink; drained {time.time() - drain0:.1f}s after the load stopped")
        # What the sink counts are transactions, one a recipient domain.
        messages = received[0] / per
        if per > 1:
            print(f"{per} recipient domains a message: {messages:,.0f} messages, "
                  f"{received[0] / elapsed:,.0f} SMTP transactions/s")
        how = "accept → SMTP, DKIM off" if args.no_dkim else f"accept → DKIM RSA-{bits} → SMTP"
        print(f"end to end: {messages / elapsed:,.0f} messages/s over {elapsed:.0f}s "
              f"({how}), peak RSS {max((s[4] for s in samples), default=rss_mb(p.pid)):.1f} MB")
        steady = [s[2] / per for s in samples[1:]] or [s[2] / per for s in samples] or [messages / elapsed]
        harness_us = {"wrk": wrk_cpu / max(sent, 1) * 1e6,
                      "sink": (sum(cpu_by_thread(sink.pid).values()) - sk0) / max(messages, 1) * 1e6}
        print(f"on the same cores: wrk {harness_us['wrk']:.0f} us CPU a request, "
              f"the sink {harness_us['sink']:.0f} us a message")
        if args.database:
            harness_us["PostgreSQL"] = (pg1 - pg0) / max(messages, 1) * 1e6
            print(f"on the same cores: the PostgreSQL server {harness_us['PostgreSQL']:.0f} us CPU a message")
        print(f"message rate while loaded: median {sorted(steady)[len(steady) // 2]:,.0f}/s")
        print(cpu_report(c0, c1, messages, s0, s1) + ("" if args.no_dkim else " (runtime includes DKIM signing)"))
        if ceiling and not args.no_dkim:
            # The machine's speed drifts within a run: read the ceiling
            # again now that the queue is empty, and judge the run by both.
            _, after = rsa_signatures(bits, speed_env)
            ceilings = [c for c in (ceiling, after) if c]
            if after:
                print(f"RSA-{bits} ceiling after the run: {after:,.0f} signatures/s")
            print(f"share of the RSA ceiling reached: {messages / elapsed / max(ceilings):.0%}"
                  f"-{messages / elapsed / min(ceilings):.0%} (against the higher and the lower reading)")
            if per == 1 and ceilings:
                print(reach(args.target, ceilings, cpu_per_message(c0, c1, messages), harness_us))
    finally:
        stop(p)
        sink.terminate()
        shutil.rmtree(d, ignore_errors=True)
        stop_pg()


if __name__ == "__main__":
    main()
