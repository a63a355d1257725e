"""Real network peers on loopback for the delivery tests: an SMTP server
(aiosmtpd) that records what it receives and can answer scripted replies,
and an authoritative DNS server (dnslib) whose zone the tests change."""
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from dnslib import QTYPE, RR, A, MX, SOA, TXT, CNAME
from dnslib.server import BaseResolver, DNSServer

from conftest import ROOT, free_port


class Received:
    def __init__(self, mail_from, rcpts, data, tls, login, connection, via="DATA", mail_options=()):
        self.mail_from = mail_from
        # MAIL FROM's parameters (`SIZE=n`), as the server saw them.
        self.mail_options = list(mail_options)
        self.rcpts = rcpts
        self.data = data
        self.tls = tls
        self.login = login
        # Which SMTP connection carried it (the peer's address and port).
        self.connection = connection
        # How the content came: DATA or BDAT.
        self.via = via


class _Handler:
    def __init__(self, sink):
        self.sink = sink

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.sink.pipelining:
            # aiosmtpd reads commands one line at a time, so it handles
            # pipelined ones; it just does not say so.
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        with self.sink.lock:
            script = self.sink.script.get(local)
            reply = None
            if script:
                reply = script.pop(0) if len(script) > 1 else script[0]
        if reply and not reply.startswith("250"):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.sink.delay:
            import asyncio

            await asyncio.sleep(self.sink.delay)
        login = session.auth_data.login.decode() if session.auth_data else None
        with self.sink.lock:
            self.sink.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content,
                    session.ssl is not None,
                    login,
                    session.peer,
                    mail_options=envelope.mail_options,
                )
            )
        return "250 2.0.0 Ok: queued as test"


def self_signed_cert(directory):
    """A certificate and key for 127.0.0.1/localhost, made with openssl."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
        check=True, capture_output=True,
    )
    return cert, key


def is_forwarded_feedback(m):
    """Whether a received message is Sesame's feedback forwarding (a DSN
    or complaint notice mailed back to a sender, as SES does by default):
    most tests count only the mail they sent."""
    head = b"\n" + m.data[:8192]
    return b"\nFrom: <MAILER-DAEMON@" in head


class _Receiver:
    """What a test asks of an SMTP receiver: `messages()` so far, and
    `wait_for(count)` of them."""

    def wait_for(self, count, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.messages()
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(f"expected {count} messages at the sink, got {len(self.messages())}")


class Sink(_Receiver):
    """An SMTP server on loopback. `script` maps a recipient's local part to
    the replies its RCPT gets, in order (the last one repeats). With
    `size_limit` it declares that limit (`SIZE n`) and enforces it."""

    def __init__(self, script=None, tls=False, auth=None, delay=0.0, implicit_tls=False,
                 pipelining=False, size_limit=None):
        self.pipelining = pipelining
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.received = []
        self.lock = threading.Lock()
        self.delay = delay
        self.port = free_port()
        kwargs = {}
        if size_limit is not None:
            kwargs.update(data_size_limit=size_limit)
        if tls or implicit_tls:
            self.tmp = tempfile.mkdtemp(prefix="sesame-sink-")
            cert, key = self_signed_cert(self.tmp)
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cert, key)
            if implicit_tls:
                kwargs.update(ssl_context=ctx)
            else:
                kwargs.update(tls_context=ctx, require_starttls=True)
        if auth:
            user, password = auth

            def authenticator(server, session, envelope, mechanism, auth_data):
                ok = auth_data.login.decode() == user and auth_data.password.decode() == password
                return AuthResult(success=ok, handled=False, auth_data=auth_data)

            # aiosmtpd counts only STARTTLS as TLS for AUTH; an implicit-TLS
            # connection is encrypted from the start anyway.
            kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=tls)
        self.controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, server_hostname="mx.test",
            **kwargs,
        )

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()

    def messages(self, feedback=False):
        """What arrived, without forwarded feedback unless `feedback`."""
        with self.lock:
            got = list(self.received)
        return got if feedback else [m for m in got if not is_forwarded_feedback(m)]


class RustSink(_Receiver):
    """The benchmark's SMTP sink (`crates/sesame-smtp/examples/smtp_sink.rs`,
    built from source if missing): PIPELINING and CHUNKING as Postfix offers
    them, commands and data read with Stalwart's smtp-proto receivers. It
    stores every message with its envelope and whether it came by DATA or
    BDAT. A recipient whose local part starts with `refuse550` or
    `refuse451` is refused with that code."""

    BIN = os.path.join(ROOT, "target", "debug", "examples", "smtp_sink")

    def __init__(self, chunking=True):
        if not os.path.exists(self.BIN):
            subprocess.run(["cargo", "build", "--quiet", "-p", "sesame-smtp", "--example", "smtp_sink"],
                           cwd=ROOT, check=True)
        self.dir = tempfile.mkdtemp(prefix="sesame-rust-sink-")
        self.port = free_port()
        self.args = [self.BIN, str(self.port), "--store", self.dir] + ([] if chunking else ["--no-chunking"])

    def __enter__(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("the sink did not start")

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def messages(self, feedback=False):
        """What arrived, without forwarded feedback unless `feedback`."""
        got = self._stored()
        return got if feedback else [m for m in got if not is_forwarded_feedback(m)]

    def _stored(self):
        out = []
        n = 1
        while os.path.exists(os.path.join(self.dir, f"{n}.env")):
            with open(os.path.join(self.dir, f"{n}.env")) as f:
                lines = f.read().splitlines()
            with open(os.path.join(self.dir, f"{n}.eml"), "rb") as f:
                data = f.read()
            via, conn, mail_from = (line.split(" ", 1)[1] for line in lines[:3])
            rcpts = [line.split(" ", 1)[1] for line in lines[3:]]
            out.append(Received(mail_from, rcpts, data, False, None, int(conn), via))
            n += 1
        return out


class _Zone(BaseResolver):
    def __init__(self):
        self.records = {}  # (name, qtype) -> [rdata]
        self.lock = threading.Lock()

    def resolve(self, request, handler):
        reply = request.reply()
        reply.header.aa = 1
        q = request.q
        name = str(q.qname).rstrip(".").lower()
        qtype = QTYPE[q.qtype]
        with self.lock:
            answers = list(self.records.get((name, qtype), []))
            cname = list(self.records.get((name, "CNAME"), [])) if qtype != "CNAME" else []
            exists = any(n == name for (n, _) in self.records)
            if not answers and cname:
                # As an authoritative server does: the CNAME, then what its
                # target holds when the target is in this zone.
                target = str(cname[0].label).rstrip(".").lower()
                reply.add_answer(RR(q.qname, QTYPE.CNAME, rdata=cname[0], ttl=1))
                for rdata in self.records.get((target, qtype), []):
                    reply.add_answer(RR(target + ".", getattr(QTYPE, qtype), rdata=rdata, ttl=1))
                return reply
        for rdata in answers:
            reply.add_answer(RR(q.qname, getattr(QTYPE, qtype), rdata=rdata, ttl=1))
        if not answers and not exists:
            reply.header.rcode = 3  # NXDOMAIN
        return reply


class Dns:
    """An authoritative DNS server on loopback (UDP and TCP) whose records
    the tests set: `dns.mx("example.test", "mx.example.test")`."""

    def __init__(self):
        self.zone = _Zone()
        self.port = free_udp_port()
        self.udp = DNSServer(self.zone, port=self.port, address="127.0.0.1")
        self.tcp = DNSServer(self.zone, port=self.port, address="127.0.0.1", tcp=True)

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def __enter__(self):
        self.udp.start_thread()
        self.tcp.start_thread()
        return self

    def __exit__(self, *exc):
        self.udp.stop()
        self.tcp.stop()

    def set(self, name, qtype, rdatas):
        with self.zone.lock:
            self.zone.records[(name.lower(), qtype)] = rdatas

    def a(self, name, ip="127.0.0.1"):
        self.set(name, "A", [A(ip)])

    def mx(self, name, *hosts):
        self.set(name, "MX", [MX(h, preference=10 * (i + 1)) for i, h in enumerate(hosts)])

    def txt(self, name, value):
        """One TXT record; a value over 255 bytes is split into strings."""
        self.set(name, "TXT", [TXT([value[i:i + 255] for i in range(0, len(value), 255)] or [""])])

    def cname(self, name, target):
        self.set(name, "CNAME", [CNAME(target)])

    def soa(self, name, mname, rname, serial):
        self.set(name, "SOA", [SOA(mname, rname, (serial, 3600, 600, 86400, 60))])

    def remove(self, name, qtype=None):
        """Removes the name's records of `qtype`, or all of them."""
        with self.zone.lock:
            for key in [k for k in self.zone.records if k[0] == name.lower() and qtype in (None, k[1])]:
                del self.zone.records[key]


def free_udp_port():
    """A port free for both UDP and TCP on loopback."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            try:
                with socket.socket() as t:
                    t.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


class Bind:
    """Debian's BIND (named) on loopback, primary for `zone`, taking dynamic
    updates (RFC 2136) signed with a TSIG key made for the test."""

    def __init__(self, zone="publish.test"):
        import base64
        import shutil
        import tempfile

        self.named = shutil.which("named") or "/usr/sbin/named"
        self.zone = zone
        self.dir = tempfile.mkdtemp(prefix="sesame-bind-")
        self.port = free_udp_port()
        self.key_name = "sesame-key"
        self.secret = base64.b64encode(os.urandom(32)).decode()
        self.secret_file = os.path.join(self.dir, "tsig.secret")
        with open(self.secret_file, "w") as f:
            f.write(self.secret + "\n")
        with open(os.path.join(self.dir, "named.conf"), "w") as f:
            f.write(f"""
options {{ directory "{self.dir}"; listen-on port {self.port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};
  pid-file "{self.dir}/named.pid"; recursion no; allow-query {{ any; }}; dnssec-validation no; }};
key "{self.key_name}" {{ algorithm hmac-sha256; secret "{self.secret}"; }};
controls {{ }};
zone "{zone}" {{ type primary; file "{self.dir}/{zone}.zone"; allow-update {{ key "{self.key_name}"; }}; }};
""")
        with open(os.path.join(self.dir, f"{zone}.zone"), "w") as f:
            f.write(f"$TTL 300\n@ IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 86400 300\n"
                    f"@ IN NS ns1.{zone}.\nns1 IN A 127.0.0.1\n")
        self.proc = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def __enter__(self):
        import subprocess

        self.log = open(os.path.join(self.dir, "named.log"), "wb")
        self.proc = subprocess.Popen([self.named, "-g", "-c", os.path.join(self.dir, "named.conf")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if self.query(self.zone, "SOA"):
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("named did not start:\n" + open(os.path.join(self.dir, "named.log")).read())

    def __exit__(self, *exc):
        import shutil

        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def query(self, name, qtype):
        """The values the server answers for `name`, as text."""
        from dnslib import DNSRecord

        reply = DNSRecord.parse(DNSRecord.question(name, qtype).send("127.0.0.1", self.port, tcp=True, timeout=3))
        out = []
        for rr in reply.rr:
            if qtype == "TXT":
                out.append("".join(s.decode() for s in rr.rdata.data))
            else:
                out.append(str(rr.rdata))
        return out


class Postfix:
    """Debian's Postfix in a temporary directory on a loopback port: it
    accepts mail for `domain` at SMTP time (no recipient checks), fails
    unknown users at local delivery, and sends its DSNs for `bounce_domain`
    to `inbound` (HOST:PORT), as a real receiving MTA does. Run as its own
    master (no system configuration is read or changed)."""

    QUEUE = {"active": 0o700, "bounce": 0o700, "corrupt": 0o700, "defer": 0o700, "deferred": 0o700,
             "flush": 0o700, "hold": 0o700, "incoming": 0o700, "private": 0o700, "saved": 0o700,
             "trace": 0o700, "maildrop": 0o730, "public": 0o710}

    def __init__(self, domain, bounce_domain, inbound):
        import grp
        import pwd

        self.dir = tempfile.mkdtemp(prefix="sesame-postfix-")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        conf, queue, data = (os.path.join(self.dir, d) for d in ("conf", "queue", "data"))
        for d in (conf, queue, data, os.path.join(queue, "pid")):
            os.makedirs(d, exist_ok=True)
        uid, gid = pwd.getpwnam("postfix").pw_uid, grp.getgrnam("postdrop").gr_gid
        os.chown(data, uid, -1)
        for name, mode in self.QUEUE.items():
            p = os.path.join(queue, name)
            os.makedirs(p, exist_ok=True)
            os.chown(p, uid, gid if name in ("maildrop", "public") else 0)
            os.chmod(p, mode)
        self.maillog = os.path.join(self.dir, "maillog")
        with open(os.path.join(conf, "main.cf"), "w") as f:
            f.write(f"""compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.{domain}
mydomain = {domain}
myorigin = {domain}
mydestination = {domain}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
local_recipient_maps =
alias_maps =
alias_database =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
transport_maps = inline:{{{bounce_domain}=smtp:[{inbound.split(':')[0]}]:{inbound.split(':')[1]}}}
smtp_tls_security_level = none
smtpd_tls_security_level = none
maillog_file = {self.maillog}
maillog_file_prefixes = {self.dir}
biff = no
""")
        with open("/etc/postfix/master.cf") as src, open(os.path.join(conf, "master.cf"), "w") as dst:
            import re
            for line in src:
                line = re.sub(r"^smtp(\s+)inet\s.*", f"127.0.0.1:{self.port} inet n - n - - smtpd", line)
                line = re.sub(r"^(\S+\s+(?:unix|unix-dgram|inet|fifo)\s+[-ny]\s+[-ny]\s+)y", r"\1n", line)
                dst.write(line)
        self.conf = conf

    def __enter__(self):
        subprocess.run(["/usr/lib/postfix/sbin/master", "-c", self.conf, "-w"], check=True, timeout=30)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("postfix did not start:\n" + self.log())

    def __exit__(self, *exc):
        import shutil
        import signal

        try:
            with open(os.path.join(self.dir, "queue", "pid", "master.pid")) as f:
                os.kill(int(f.read().strip()), signal.SIGTERM)
            time.sleep(0.5)
        except (OSError, ValueError):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            return open(self.maillog).read()
        except OSError:
            return ""
