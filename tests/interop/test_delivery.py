"""Delivery: accepted mail reaches real SMTP servers on loopback, signed
with DKIM that an independent implementation (dkimpy) verifies; replies are
classified; the mailbox simulator's outcomes become SES-format events; the
queue survives kill -9."""
import base64
import json
import os
import platform
import signal
import subprocess
import threading
import time
import urllib.request

import dkim
import pytest
import rsa  # python-rsa, installed with awscli

from peers import Dns, RustSink, Sink

BOUNCE_DOMAIN = "bounces.sesame.test"


def events(server, **query):
    qs = urllib.parse.urlencode(query)
    with urllib.request.urlopen(f"{server.url}/_sesame/events?{qs}") as r:
        return json.loads(r.read())["events"]


def wait_events(server, count, timeout=30, **query):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = events(server, **query)
        if len(got) >= count:
            return got
        time.sleep(0.05)
    raise AssertionError(f"expected {count} events for {query}, got {events(server, **query)}")


def base_args(*extra):
    return [
        "--dev",
        "--auto-verify",
        "--no-sandbox",
        "--hostname", "sesame.test",
        "--bounce-domain", BOUNCE_DOMAIN,
        *extra,
    ]


def byodkim_domain(sesv2, domain, selector="sel1", bits=2048):
    """A verified domain signing with a key the test made; returns the DNS
    TXT value to publish for it."""
    public, private = rsa.newkeys(bits)
    sesv2.create_email_identity(
        EmailIdentity=domain,
        DkimSigningAttributes={
            "DomainSigningSelector": selector,
            "DomainSigningPrivateKey": base64.b64encode(private.save_pkcs1(format="DER")).decode(),
        },
    )
    dkim_attrs = sesv2.get_email_identity(EmailIdentity=domain)["DkimAttributes"]
    assert dkim_attrs["Status"] == "SUCCESS" and dkim_attrs["SigningEnabled"]
    p = base64.b64encode(public.save_pkcs1(format="DER")).decode()
    return f"v=DKIM1; k=rsa; p={p}".encode()


def dkim_verifies(message, records):
    """dkimpy's verdict, answering its DNS queries from `records`
    (name -> TXT value); every name it asks is recorded."""
    asked = []

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        asked.append(name.rstrip("."))
        return records.get(name.rstrip("."))

    return dkim.verify(message, dnsfunc=dnsfunc), asked


def published(server, identity, csv=False):
    """`sesame identities records`: {(name, type): value}."""
    args = ["identities", "records", "--account", "111111111111", "--region", "us-east-1", identity]
    out = server.sesame(*args, *(["--csv"] if csv else [])).stdout
    if csv:
        import csv as csvlib
        import io

        rows = list(csvlib.reader(io.StringIO(out)))
        assert rows[0] == ["Type", "Name", "Value"], "SES console's layout"
        return {(r[1], r[0]): r[2] for r in rows[1:]}
    records = {}
    for line in out.splitlines():
        name, kind, value = line.split("\t")
        records[(name, kind)] = value.strip('"')
    return records


def simple(sesv2, source, to, subject="Hello", cc=()):
    return sesv2.send_email(
        FromEmailAddress=source,
        Destination={"ToAddresses": list(to), "CcAddresses": list(cc)},
        Content={"Simple": {"Subject": {"Data": subject}, "Body": {"Text": {"Data": "Hi there.\n"}, "Html": {"Data": "<p>Hi there.</p>"}}}},
    )["MessageId"]


def relaying_byodkim(make_server, sink, unique, prefix):
    """Sesame relaying to `sink`, and a BYODKIM domain to send from:
    (server, its sesv2 client, the domain, its TXT record, a destination
    domain)."""
    s = make_server(base_args("--delivery", "relay", "--relay", f"smtp://127.0.0.1:{sink.port}?tls=none"))
    sesv2 = s.client("sesv2")
    domain = f"{prefix}-{unique}.example.com"
    return s, sesv2, domain, byodkim_domain(sesv2, domain), f"dest-{unique}.test"


@pytest.mark.parametrize("pipelining", [False, True], ids=["one-by-one", "pipelined"])
def test_relay_delivers_mail_signed_with_byodkim(make_server, unique, pipelining):
    with Sink(pipelining=pipelining) as sink:
        s, sesv2, domain, txt, _ = relaying_byodkim(make_server, sink, unique, "byo")
        mid = simple(sesv2, f"Sender <sender@{domain}>", [f"to@dest-{unique}.test"], cc=[f"cc@dest-{unique}.test"])
        got = sink.wait_for(1)
        assert len(got) == 1, "one domain, one transaction"
        m = got[0]
        assert m.mail_from == f"{mid}@{BOUNCE_DOMAIN}", "VERP return path names the message"
        assert sorted(m.rcpts) == sorted([f"to@dest-{unique}.test", f"cc@dest-{unique}.test"])
        assert m.data.startswith(b"DKIM-Signature:")
        assert b"Subject: Hello" in m.data
        ok, asked = dkim_verifies(m.data, {f"sel1._domainkey.{domain}": txt})
        assert ok, m.data.decode(errors="replace")[:2000]
        assert asked == [f"sel1._domainkey.{domain}"]
        # What Sesame tells the owner to publish (SubjectPublicKeyInfo, where
        # the test wrote PKCS#1) is the same key: the signature verifies with it.
        for csv in (False, True):
            record = published(s, domain, csv=csv)[(f"sel1._domainkey.{domain}", "TXT")]
            assert dkim_verifies(m.data, {f"sel1._domainkey.{domain}": record.encode()})[0]
        email = s.sesame("identities", "records", "--account", "111111111111", "--region", "us-east-1",
                         f"x@{domain}", check=False)
        assert email.returncode != 0
        # The message the receiver got is the accepted one plus the signature.
        with urllib.request.urlopen(f"{s.url}/_sesame/messages/{mid}/raw") as r:
            assert m.data.endswith(r.read())
        ev = wait_events(s, 1, message_id=mid)
        assert ev[0]["eventType"] == "Delivery"
        d = ev[0]["delivery"]
        assert sorted(d["recipients"]) == sorted(m.rcpts)
        assert d["smtpResponse"].startswith("250 2.0.0")
        assert d["reportingMTA"] == "sesame.test"
        assert ev[0]["mail"]["messageId"] == mid
        assert ev[0]["mail"]["sendingAccountId"] == "111111111111"


def next_message_shares_the_connection(server, sesv2, sink, domain, dest):
    """A second message, after the sink's first, is delivered over a
    connection already open, not a new one: the client kept it in step.
    (The bounces so far come back to the sender as forwarded feedback
    through the same relay, so the relay may hold two idle connections;
    either is in step.)"""
    after = simple(sesv2, f"sender@{domain}", [f"after@{dest}"])
    got = sink.wait_for(2)
    assert got[1].rcpts == [f"after@{dest}"]
    earlier = {m.connection for m in sink.messages(feedback=True) if m.rcpts != got[1].rcpts}
    assert got[1].connection in earlier, "the connection stayed in step"
    assert wait_events(server, 1, message_id=after)[0]["eventType"] == "Delivery"


@pytest.mark.parametrize("chunking", [True, False], ids=["bdat", "data"])
def test_relay_to_a_server_offering_chunking(make_server, unique, chunking):
    """A server that offers CHUNKING and PIPELINING (as Postfix does) gets
    each transaction in one write: envelope and the message as one BDAT
    LAST chunk, not dot-stuffed. One that offers only PIPELINING gets
    DATA. Either way the message arrives byte for byte and DKIM verifies,
    a refused recipient bounces while the others are delivered, and a
    transaction with every recipient refused leaves the connection in step
    for the next message."""
    with RustSink(chunking=chunking) as sink:
        s, sesv2, domain, txt, dest = relaying_byodkim(make_server, sink, unique, "chunk")
        body = b".leading dot\r\n..two dots\r\n.\r\nlast line\r\n"
        raw = f"From: sender@{domain}\r\nTo: to@{dest}\r\nSubject: Dots\r\n\r\n".encode() + body
        mid = sesv2.send_email(
            FromEmailAddress=f"sender@{domain}",
            Destination={"ToAddresses": [f"to@{dest}", f"refuse550@{dest}"]},
            Content={"Raw": {"Data": raw}},
        )["MessageId"]
        m = sink.wait_for(1)[0]
        assert m.via == ("BDAT" if chunking else "DATA")
        assert m.mail_from == f"{mid}@{BOUNCE_DOMAIN}"
        assert m.rcpts == [f"to@{dest}"], "the refused recipient is not in the transaction"
        with urllib.request.urlopen(f"{s.url}/_sesame/messages/{mid}/raw") as r:
            stored = r.read()
        assert m.data.startswith(b"DKIM-Signature:") and m.data.endswith(stored)
        assert m.data.endswith(b"\r\n\r\n" + body)
        assert dkim_verifies(m.data, {f"sel1._domainkey.{domain}": txt})[0]
        by_kind = {e["eventType"]: e for e in wait_events(s, 2, message_id=mid)}
        assert by_kind["Delivery"]["delivery"]["recipients"] == [f"to@{dest}"]
        assert by_kind["Delivery"]["delivery"]["smtpResponse"] == "250 2.0.0 Ok: queued"
        bounce = by_kind["Bounce"]["bounce"]
        assert bounce["bounceType"] == "Permanent"
        assert [r["emailAddress"] for r in bounce["bouncedRecipients"]] == [f"refuse550@{dest}"]
        assert bounce["bouncedRecipients"][0]["diagnosticCode"] == "smtp; 550 5.1.1 no such user here"
        # Every recipient refused: the chunk (or DATA) is refused too and
        # the transaction reset; the same connection carries the next one.
        refused = simple(sesv2, f"sender@{domain}", [f"refuse550-b@{dest}"])
        assert wait_events(s, 1, message_id=refused)[0]["eventType"] == "Bounce"
        next_message_shares_the_connection(s, sesv2, sink, domain, dest)


@pytest.mark.parametrize("chunking", [True, False], ids=["bdat", "data"])
def test_a_large_message_arrives_byte_for_byte(make_server, unique, chunking):
    """A message larger than what goes in the transaction's one write
    (64 KiB) is written after the commands as one BDAT chunk, not copied,
    or dot-stuffed after DATA: it arrives byte for byte, DKIM verifies, and
    the connection carries the next, small, message."""
    with RustSink(chunking=chunking) as sink:
        s, sesv2, domain, txt, dest = relaying_byodkim(make_server, sink, unique, "large")
        line = b".line of a large message, with a leading dot\r\n"
        raw = (f"From: sender@{domain}\r\nTo: to@{dest}\r\nSubject: Large\r\n\r\n".encode()
               + line * (300_000 // len(line)))
        mid = sesv2.send_email(FromEmailAddress=f"sender@{domain}", Destination={"ToAddresses": [f"to@{dest}"]},
                               Content={"Raw": {"Data": raw}})["MessageId"]
        m = sink.wait_for(1)[0]
        assert m.via == ("BDAT" if chunking else "DATA")
        with urllib.request.urlopen(f"{s.url}/_sesame/messages/{mid}/raw") as r:
            stored = r.read()
        assert len(stored) > 64 * 1024
        assert m.data.startswith(b"DKIM-Signature:") and m.data.endswith(stored)
        assert dkim_verifies(m.data, {f"sel1._domainkey.{domain}": txt})[0]
        next_message_shares_the_connection(s, sesv2, sink, domain, dest)


def test_a_message_to_several_domains_is_signed_once(make_server, unique):
    """SendEmail to recipients at two domains: two SMTP transactions, one
    a domain, carrying the same DKIM signature, made once (the metric
    counts RSA signatures), and dkimpy verifies both."""
    with Sink() as sink:
        s, sesv2, domain, txt, _ = relaying_byodkim(make_server, sink, unique, "once")
        to = [f"a@dest-a-{unique}.test", f"b@dest-b-{unique}.test", "success@simulator.amazonses.com"]
        mid = simple(sesv2, f"sender@{domain}", to, cc=[f"c@DEST-B-{unique}.test"])
        got = sink.wait_for(2)
        assert sorted(sorted(m.rcpts) for m in got) == [
            [f"a@dest-a-{unique}.test"], sorted([f"b@dest-b-{unique}.test", f"c@DEST-B-{unique}.test"])]
        with urllib.request.urlopen(f"{s.url}/_sesame/messages/{mid}/raw") as r:
            stored = r.read()
        assert all(m.data.endswith(stored) for m in got)
        signatures = [m.data[:-len(stored)] for m in got]
        assert signatures[0].startswith(b"DKIM-Signature:") and b" b=" in signatures[0]
        assert signatures[0] == signatures[1]
        for m in got:
            assert dkim_verifies(m.data, {f"sel1._domainkey.{domain}": txt})[0]
        wait_events(s, 3, message_id=mid)
        text = s.metrics()
        assert "sesame_dkim_signatures_total 1\n" in text, text


def test_tampered_message_fails_dkim(make_server, unique):
    """The verification above is not vacuous: dkimpy rejects a changed body."""
    with Sink() as sink:
        s = make_server(base_args("--relay", f"smtp://127.0.0.1:{sink.port}?tls=none"))
        sesv2 = s.client("sesv2")
        domain = f"tamper-{unique}.example.com"
        txt = byodkim_domain(sesv2, domain)
        simple(sesv2, f"a@{domain}", ["x@dest.test"])
        data = sink.wait_for(1)[0].data
        ok, _ = dkim_verifies(data.replace(b"Hi there.", b"Hi t here."), {f"sel1._domainkey.{domain}": txt})
        assert not ok


def test_relay_with_starttls_and_auth(make_server, unique):
    with Sink(tls=True, auth=("relayuser", "s3cret-pass")) as sink:
        s = make_server(base_args("--relay", f"smtp://relayuser:s3cret-pass@127.0.0.1:{sink.port}?insecure=true"))
        sesv2 = s.client("sesv2")
        sesv2.create_email_identity(EmailIdentity=f"tls-{unique}.example.com")
        simple(sesv2, f"a@tls-{unique}.example.com", ["x@dest.test"])
        m = sink.wait_for(1)[0]
        assert m.tls, "the relay connection was upgraded with STARTTLS"
        assert m.login == "relayuser"
        assert "s3cret-pass" not in s.read_log(), "the relay password never reaches logs"


def test_relay_with_wrong_password_defers(make_server, unique):
    with Sink(tls=True, auth=("relayuser", "right")) as sink:
        s = make_server(base_args("--relay", f"smtp://relayuser:wrong@127.0.0.1:{sink.port}?insecure=true"))
        sesv2 = s.client("sesv2")
        sesv2.create_email_identity(EmailIdentity=f"auth-{unique}.example.com")
        mid = simple(sesv2, f"a@auth-{unique}.example.com", ["x@dest.test"])
        deadline = time.time() + 20
        while time.time() < deadline:
            out = s.sesame("queue", "list", "--state", "queued").stdout
            if mid in out:
                break
            time.sleep(0.1)
        assert mid in out and "535" in out, out
        assert sink.messages() == []
        # Deferred, not bounced: only DeliveryDelay events.
        kinds = [e["eventType"] for e in events(s, message_id=mid)]
        assert "Bounce" not in kinds, "a relay refusing our login does not bounce the mail"
        assert set(kinds) <= {"DeliveryDelay"}, kinds


def test_direct_delivery_through_mx_and_a_fallback(make_server, unique):
    with Sink() as sink, Dns() as dns:
        dns.mx(f"mx-{unique}.test", f"mail.mx-{unique}.test")
        dns.a(f"mail.mx-{unique}.test")
        dns.a(f"a-only-{unique}.test")  # no MX: A record fallback
        s = make_server(base_args(
            "--delivery", "direct", "--delivery-allow-private", "--dns-server", dns.address, "--smtp-port", str(sink.port),
        ))
        sesv2 = s.client("sesv2")
        domain = f"easy-{unique}.example.com"
        sesv2.create_email_identity(
            EmailIdentity=domain, DkimSigningAttributes={"NextSigningKeyLength": "RSA_1024_BIT"}
        )
        mid = simple(sesv2, f"a@{domain}", [f"u1@mx-{unique}.test", f"u2@a-only-{unique}.test"])
        got = sink.wait_for(2)
        assert sorted(r for m in got for r in m.rcpts) == [f"u1@mx-{unique}.test", f"u2@a-only-{unique}.test"]
        # Easy DKIM: the records Sesame says to publish for the domain.
        tokens = sesv2.get_email_identity(EmailIdentity=domain)["DkimAttributes"]["Tokens"]
        records = published(s, domain)
        assert records[(f"_amazonses.{domain}", "TXT")]
        txt = records[(f"{tokens[0]}._domainkey.{domain}", "TXT")].encode()
        assert all(records[(f"{t}._domainkey.{domain}", "TXT")] == txt.decode() for t in tokens)
        for m in got:
            ok, asked = dkim_verifies(m.data, {f"{t}._domainkey.{domain}": txt for t in tokens})
            assert ok and asked[0].split(".")[0] in tokens
        # A 1024-bit key, as asked for.
        assert len(base64.b64decode(txt.decode().split("p=")[1])) < 200
        wait_events(s, 2, message_id=mid, type="Delivery")


@pytest.mark.parametrize("greets", [False, True], ids=["hangs-up", "greets-then-drops"])
def test_direct_defers_a_domain_whose_hosts_just_failed_without_connecting(make_server, unique, greets):
    """A domain none of whose MX hosts took a connection gets no more
    connections for a while (60 s): its other mail is deferred at once,
    saying why, instead of each delivery waiting out its own timeouts. A
    host that greets and then drops the transaction is tried for each
    message."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted = []

    def serve(c):
        # Hangs up before any greeting, or greets, answers EHLO and hangs
        # up at the next command.
        with c:
            if greets:
                f = c.makefile("rb")
                c.sendall(b"220 mx.test ESMTP\r\n")
                f.readline()
                c.sendall(b"250 mx.test\r\n")
                f.readline()

    def accept():
        while True:
            try:
                c, _ = listener.accept()
            except OSError:
                return
            accepted.append(c.getpeername())
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        with Dns() as dns:
            dead = f"dead-{unique}.test"
            dns.mx(dead, f"mx.{dead}")
            dns.a(f"mx.{dead}")
            s = make_server(base_args(
                "--delivery", "direct", "--delivery-allow-private", "--dns-server", dns.address,
                "--smtp-port", str(listener.getsockname()[1]), "--retry-initial", "1h",
            ))
            sesv2 = s.client("sesv2")
            sesv2.create_email_identity(EmailIdentity=f"d-{unique}.example.com")

            def queued(n):
                deadline = time.time() + 20
                while time.time() < deadline:
                    out = s.sesame("queue", "list", "--state", "queued").stdout
                    if out.count(f"  {dead}  ") >= n:
                        return out
                    time.sleep(0.1)
                raise AssertionError(f"expected {n} deliveries queued: {out}")

            simple(sesv2, f"a@d-{unique}.example.com", [f"u1@{dead}"])
            queued(1)
            assert len(accepted) == 1
            for n in (2, 3):
                simple(sesv2, f"a@d-{unique}.example.com", [f"u{n}@{dead}"])
                queued(n)
            out = queued(3)
            not_tried = out.count(f"not tried: no host of {dead} took a connection")
            if greets:
                assert (len(accepted), not_tried) == (3, 0), out
            else:
                assert (len(accepted), not_tried) == (1, 2), out
    finally:
        listener.close()


def test_direct_to_a_domain_that_does_not_exist_bounces(make_server, unique):
    with Dns() as dns:
        s = make_server(base_args("--delivery", "direct", "--delivery-allow-private", "--dns-server", dns.address, "--smtp-port", "9"))
        sesv2 = s.client("sesv2")
        sesv2.create_email_identity(EmailIdentity=f"nx-{unique}.example.com")
        mid = simple(sesv2, f"a@nx-{unique}.example.com", [f"who@nowhere-{unique}.test"])
        b = wait_events(s, 1, message_id=mid)[0]["bounce"]
        assert b["bounceType"] == "Permanent"
        assert b["bouncedRecipients"][0]["status"] == "5.1.2"
        assert "Host or domain name not found" in b["bouncedRecipients"][0]["diagnosticCode"]


def test_a_server_declaring_a_size_limit_gets_nothing_larger(make_server, unique):
    """With SIZE offered, MAIL FROM declares each message's size (RFC
    1870); a message larger than the limit the server declared is not sent
    at all and bounces as too large, as the server would have refused it
    after reading it whole."""
    with Sink(size_limit=50_000) as sink:
        s = make_server(base_args("--relay", f"smtp://127.0.0.1:{sink.port}?tls=none"))
        sesv2 = s.client("sesv2")
        domain = f"size-{unique}.example.com"
        sesv2.create_email_identity(EmailIdentity=domain)
        simple(sesv2, f"a@{domain}", ["small@dest.test"])
        m = sink.wait_for(1)[0]
        assert m.data.startswith(b"DKIM-Signature:")
        assert m.mail_options == [f"SIZE={len(m.data)}"]
        raw = (f"From: a@{domain}\r\nTo: big@dest.test\r\nSubject: Big\r\n\r\n".encode()
               + (b"x" * 78 + b"\r\n") * 700)
        mid = sesv2.send_email(FromEmailAddress=f"a@{domain}", Destination={"ToAddresses": ["big@dest.test"]},
                               Content={"Raw": {"Data": raw}})["MessageId"]
        bounce = wait_events(s, 1, message_id=mid, type="Bounce")[0]["bounce"]
        assert (bounce["bounceType"], bounce["bounceSubType"]) == ("Permanent", "MessageTooLarge")
        [r] = bounce["bouncedRecipients"]
        assert (r["emailAddress"], r["status"]) == ("big@dest.test", "5.3.4")
        assert r["diagnosticCode"].startswith("smtp; 552 5.3.4 Message size exceeds fixed maximum message size")
        assert "the receiving server declared SIZE 50000" in r["diagnosticCode"]
        assert len(sink.messages()) == 1


def test_an_eight_bit_message_is_declared_and_arrives_intact(make_server, unique):
    """A raw message with 8-bit bytes goes to a server offering 8BITMIME
    (aiosmtpd does) declared `BODY=8BITMIME` (RFC 6152), byte for byte."""
    with Sink() as sink:
        s = make_server(base_args("--relay", f"smtp://127.0.0.1:{sink.port}?tls=none"))
        sesv2 = s.client("sesv2")
        domain = f"utf8-{unique}.example.com"
        sesv2.create_email_identity(EmailIdentity=domain)
        raw = (f"From: a@{domain}\r\nTo: r@dest.test\r\nSubject: =?utf-8?q?d=C3=A9j=C3=A0?=\r\n"
               "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Transfer-Encoding: 8bit\r\n\r\nD\u00e9j\u00e0 vu, \u00e0 la cr\u00e8me.\r\n").encode()
        sesv2.send_email(FromEmailAddress=f"a@{domain}", Destination={"ToAddresses": ["r@dest.test"]},
                         Content={"Raw": {"Data": raw}})
        m = sink.wait_for(1)[0]
        assert "BODY=8BITMIME" in m.mail_options
        assert m.data.startswith(b"DKIM-Signature:") and m.data.endswith(raw)


@pytest.mark.parametrize("pipelining", [False, True], ids=["one-by-one", "pipelined"])
def test_451_is_retried_and_550_bounces(make_server, unique, pipelining):
    script = {"later": ["451 4.3.0 Try again later", "250 OK"], "nouser": ["550 5.1.1 No such user here"]}
    with Sink(script=script, pipelining=pipelining) as sink:
        s = make_server(base_args("--relay", f"smtp://127.0.0.1:{sink.port}?tls=none", "--retry-initial", "1s"))
        sesv2 = s.client("sesv2")
        sesv2.create_email_identity(EmailIdentity=f"r-{unique}.example.com")
        mid = simple(sesv2, f"a@r-{unique}.example.com", ["later@dest.test", "nouser@dest.test"])
        bounce = wait_events(s, 1, message_id=mid, type="Bounce")[0]["bounce"]
        assert bounce["bounceType"] == "Permanent"
        assert bounce["bounceSubType"] == "NoEmail"
        assert bounce["bouncedRecipients"] == [{
            "emailAddress": "nouser@dest.test",
            "action": "failed",
            "status": "5.1.1",
            "diagnosticCode": "smtp; 550 5.1.1 No such user here",
        }]
        # The 451 recipient waits for its retry, which the sink then takes.
        delivery = wait_events(s, 1, message_id=mid, type="Delivery")[0]["delivery"]
        assert delivery["recipients"] == ["later@dest.test"]
        got = sink.messages()
        assert len(got) == 1 and got[0].rcpts == ["later@dest.test"]
        stats = s.client("ses").get_send_statistics()["SendDataPoints"]
        assert sum(p["Bounces"] for p in stats) == 1
        assert sum(p["DeliveryAttempts"] for p in stats) == 2


def test_mailbox_simulator_outcomes_are_events_and_nothing_leaves(make_server, unique):
    with Sink() as sink:
        s = make_server(base_args("--relay", f"smtp://127.0.0.1:{sink.port}?tls=none"))
        sesv2 = s.client("sesv2")
        sesv2.create_email_identity(EmailIdentity=f"sim-{unique}.example.com")
        sim = "simulator.amazonses.com"
        to = [f"success@{sim}", f"bounce+x1@{sim}", f"ooto@{sim}", f"complaint@{sim}", f"suppressionlist@{sim}"]
        mid = simple(sesv2, f"a@sim-{unique}.example.com", to)
        ev = wait_events(s, 7, message_id=mid)
        kinds = sorted(e["eventType"] for e in ev)
        assert kinds == ["Bounce"] * 3 + ["Complaint"] + ["Delivery"] * 3
        by = {}
        for e in ev:
            for key in ("bounce", "complaint"):
                if key in e:
                    recips = e[key].get("bouncedRecipients") or e[key].get("complainedRecipients")
                    by[(key, recips[0]["emailAddress"])] = e[key]
        b = by[("bounce", f"bounce+x1@{sim}")]
        assert (b["bounceType"], b["bounceSubType"]) == ("Permanent", "General")
        assert b["bouncedRecipients"][0]["diagnosticCode"] == "smtp; 550 5.1.1 user unknown"
        assert by[("bounce", f"ooto@{sim}")]["bounceType"] == "Transient"
        sup = by[("bounce", f"suppressionlist@{sim}")]
        assert (sup["bounceType"], sup["bounceSubType"]) == ("Permanent", "Suppressed")
        assert "suppressed sending to this address" in sup["bouncedRecipients"][0]["diagnosticCode"]
        assert by[("complaint", f"complaint@{sim}")]["complaintFeedbackType"] == "abuse"
        time.sleep(0.3)
        assert sink.messages() == [], "no simulator mail leaves the machine"
        stats = s.client("ses").get_send_statistics()["SendDataPoints"]
        assert sum(p["Complaints"] for p in stats) == 1
        assert sum(p["Bounces"] for p in stats) == 3


def test_queue_command_shows_retries_and_drops(make_server, unique):
    with Sink(script={"later": ["451 4.7.0 Greylisted"]}) as sink:
        s = make_server(base_args("--relay", f"smtp://127.0.0.1:{sink.port}?tls=none", "--retry-initial", "1h"))
        sesv2 = s.client("sesv2")
        sesv2.create_email_identity(EmailIdentity=f"q-{unique}.example.com")
        mid = simple(sesv2, f"a@q-{unique}.example.com", ["later@dest.test"])
        deadline = time.time() + 20
        while time.time() < deadline:
            out = s.sesame("queue").stdout
            if "queued 1" in out:
                break
            time.sleep(0.1)
        assert "queued 1" in out and "next attempt" in out and "451 4.7.0 Greylisted" in out, out
        assert mid in out and "attempts 1" in out
        # Retry now: the receiver now accepts.
        sink.script["later"] = ["250 OK"]
        assert "due now" in s.sesame("queue", "retry", mid).stdout
        wait_events(s, 1, message_id=mid, type="Delivery")
        assert s.sesame("queue", "retry", mid, check=False).returncode != 0
        # Drop: a second message that is deferred, then given up by the operator.
        sink.script["later"] = ["451 4.7.0 Greylisted"]
        mid2 = simple(sesv2, f"a@q-{unique}.example.com", ["later@dest.test"])
        deadline = time.time() + 20
        while mid2 not in s.sesame("queue", "list", "--state", "queued").stdout and time.time() < deadline:
            time.sleep(0.1)
        assert "dropped 1" in s.sesame("queue", "drop", mid2).stdout
        assert mid2 in s.sesame("queue", "list", "--state", "failed").stdout
        bad = s.sesame("queue", "list", "--state", "lost", check=False)
        assert bad.returncode != 0 and "unknown state" in bad.stderr


def cpu_flags():
    for line in open("/proc/cpuinfo"):
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@pytest.mark.parametrize("path", ["avx2", "default"])
def test_rsa_path_starts_again_with_adx_masked_and_both_paths_sign_verifiably(make_server, unique, path, monkeypatch):
    # An OPENSSL_ia32cap in the tests' environment would be left alone.
    monkeypatch.delenv("OPENSSL_ia32cap", raising=False)
    # `avx2` restarts wherever there is AVX2 to use (only on x86-64).
    masks = path == "avx2" and platform.machine() == "x86_64" and "avx2" in cpu_flags()
    with Sink() as sink:
        s = make_server(base_args("--delivery", "relay", "--relay", f"smtp://127.0.0.1:{sink.port}?tls=none",
                                  "--rsa-path", path))
        # The process that answers is the one the test started: the restart
        # is an exec, same process id, with aws-lc's ADX bit masked.
        environ = open(f"/proc/{s.proc.pid}/environ", "rb").read().split(b"\0")
        assert (b"OPENSSL_ia32cap=:~0x80000" in environ) == masks, environ
        log = s.read_log()
        assert ("aws-lc signs RSA with its AVX2 code" in log) == masks, log
        assert log.count("DKIM signing:") == 1, log
        sesv2 = s.client("sesv2")
        domain = f"rsa-{path}-{unique}.example.com"
        txt = byodkim_domain(sesv2, domain)
        simple(sesv2, f"sender@{domain}", [f"to@dest-{unique}.test"])
        m = sink.wait_for(1)[0]
        assert dkim_verifies(m.data, {f"sel1._domainkey.{domain}": txt})[0], m.data[:2000]


def test_rsa_path_refuses_unknown_values(tmp_path):
    from conftest import BIN

    p = subprocess.run([BIN, "serve", "--data-dir", str(tmp_path), "--rsa-path", "fast"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and '--rsa-path: invalid RSA path "fast"' in p.stderr, p.stderr
    conf = tmp_path / "sesame.toml"
    conf.write_text('[dkim]\nrsa_path = "avx512"\n')
    p = subprocess.run([BIN, "--config", str(conf), "serve", "--data-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and '[dkim] rsa_path: invalid RSA path "avx512"' in p.stderr, p.stderr


def test_metrics(make_server, unique):
    s = make_server(base_args())
    sesv2 = s.client("sesv2")
    sesv2.create_email_identity(EmailIdentity=f"m-{unique}.example.com")
    mid = simple(sesv2, f"a@m-{unique}.example.com", ["success@simulator.amazonses.com", "x@dest.test"])
    wait_events(s, 2, message_id=mid)
    text = s.metrics()
    assert "sesame_accepted_total 1" in text
    assert "sesame_delivered_total 1" in text  # the captured one; the simulator's are scripted
    assert 'sesame_queue_depth{state="queued"} 0' in text
    assert "sesame_delivery_latency_seconds_bucket" in text


def test_kill_9_loses_nothing(make_server, unique):
    """Accept N messages, kill -9 while delivering, restart: every accepted
    message reaches the receiver; duplicates only from what was in flight."""
    n = 200
    with Sink(delay=0.1) as sink:
        args = base_args("--relay", f"smtp://127.0.0.1:{sink.port}?tls=none", "--delivery-concurrency", "8")
        s = make_server(args)
        sesv2 = s.client("sesv2")
        sesv2.create_email_identity(EmailIdentity=f"crash-{unique}.example.com")
        # Lift the 14/s rate so the senders are not throttled. The operator
        # command reads no_sandbox from the config file, as the server's
        # --no-sandbox is not its setting.
        conf = os.path.join(s.data_dir, "ops.toml")
        with open(conf, "w") as f:
            f.write("no_sandbox = true\n")
        s.sesame("--config", conf, "accounts", "set-quota", "--account", "111111111111",
                 "--region", "us-east-1", "--max-send-rate", "100000", "--max-24h-send", "-1")
        ids = []
        lock = threading.Lock()

        def send(k):
            c = s.client("sesv2")
            for i in range(k):
                mid = simple(c, f"a@crash-{unique}.example.com", [f"u{i}@dest.test"])
                with lock:
                    ids.append(mid)

        threads = [threading.Thread(target=send, args=(n // 4,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(ids) == n
        # Kill while delivery is under way.
        deadline = time.time() + 30
        while len(sink.messages()) < 20 and time.time() < deadline:
            time.sleep(0.01)
        s.proc.send_signal(signal.SIGKILL)
        s.proc.wait()
        before = len(sink.messages())
        assert before < n, "the kill came while mail was still queued"
        s.start()
        deadline = time.time() + 60
        while time.time() < deadline:
            seen = {m.mail_from.split("@")[0] for m in sink.messages()}
            if seen >= set(ids):
                break
            time.sleep(0.1)
        got = [m.mail_from.split("@")[0] for m in sink.messages()]
        missing = set(ids) - set(got)
        assert not missing, f"{len(missing)} accepted messages were never delivered"
        duplicates = len(got) - len(set(got))
        print(f"kill -9 after {before} of {n} delivered: {duplicates} duplicate(s)")
        assert duplicates <= 8, "only messages in flight at the crash may repeat"
        assert "requeued deliveries left in flight" in s.read_log() or duplicates == 0


def test_custom_mail_from_api_and_return_path(make_server, unique):
    with Sink() as sink:
        s = make_server(base_args("--relay", f"smtp://127.0.0.1:{sink.port}?tls=none"))
        ses, sesv2 = s.client("ses"), s.client("sesv2")
        domain = f"mf-{unique}.example.com"
        sesv2.create_email_identity(EmailIdentity=domain)
        attrs = sesv2.get_email_identity(EmailIdentity=domain)["MailFromAttributes"]
        assert attrs == {"BehaviorOnMxFailure": "USE_DEFAULT_VALUE"}
        # Not a subdomain of the identity: refused, nothing changes.
        with pytest.raises(ses.exceptions.ClientError) as e:
            ses.set_identity_mail_from_domain(Identity=domain, MailFromDomain="bounce.other.com")
        assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
        assert "is not subdomain of the domain of the identity" in e.value.response["Error"]["Message"]
        with pytest.raises(sesv2.exceptions.BadRequestException):
            sesv2.put_email_identity_mail_from_attributes(EmailIdentity=domain, MailFromDomain=domain)
        ses.set_identity_mail_from_domain(Identity=domain, MailFromDomain=f"bounce.{domain}",
                                          BehaviorOnMXFailure="RejectMessage")
        v1 = ses.get_identity_mail_from_domain_attributes(Identities=[domain])["MailFromDomainAttributes"][domain]
        # --auto-verify: the MAIL FROM domain is verified at once.
        assert v1 == {"MailFromDomain": f"bounce.{domain}", "MailFromDomainStatus": "Success",
                      "BehaviorOnMXFailure": "RejectMessage"}
        v2 = sesv2.get_email_identity(EmailIdentity=domain)["MailFromAttributes"]
        assert v2 == {"MailFromDomain": f"bounce.{domain}", "MailFromDomainStatus": "SUCCESS",
                      "BehaviorOnMxFailure": "REJECT_MESSAGE"}
        mid = simple(sesv2, f"a@{domain}", ["x@dest.test"])
        assert sink.wait_for(1)[0].mail_from == f"{mid}@bounce.{domain}"
        # Removing it goes back to the default bounce domain.
        sesv2.put_email_identity_mail_from_attributes(EmailIdentity=domain)
        assert "MailFromDomain" not in sesv2.get_email_identity(EmailIdentity=domain)["MailFromAttributes"]
        mid2 = simple(sesv2, f"a@{domain}", ["x@dest.test"])
        assert sink.wait_for(2)[1].mail_from == f"{mid2}@{BOUNCE_DOMAIN}"


def test_unverified_mail_from_with_reject_refuses_sends(make_server, unique):
    s = make_server(["--dev", "--no-sandbox"])
    ses, sesv2 = s.client("ses"), s.client("sesv2")
    domain = f"mfr-{unique}.example.com"
    sesv2.create_email_identity(EmailIdentity=domain)
    s.sesame("identities", "verify", "--account", "111111111111", "--region", "us-east-1", domain)
    sesv2.put_email_identity_mail_from_attributes(
        EmailIdentity=domain, MailFromDomain=f"mail.{domain}", BehaviorOnMxFailure="REJECT_MESSAGE")
    assert sesv2.get_email_identity(EmailIdentity=domain)["MailFromAttributes"]["MailFromDomainStatus"] == "PENDING"
    with pytest.raises(sesv2.exceptions.MailFromDomainNotVerifiedException):
        simple(sesv2, f"a@{domain}", ["x@dest.test"])
    with pytest.raises(ses.exceptions.ClientError) as e:
        ses.send_email(Source=f"a@{domain}", Destination={"ToAddresses": ["x@dest.test"]},
                       Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}})
    assert e.value.response["Error"]["Code"] == "MailFromDomainNotVerifiedException"
    # UseDefaultValue sends, with the default return path.
    ses.set_identity_mail_from_domain(Identity=domain, MailFromDomain=f"mail.{domain}",
                                      BehaviorOnMXFailure="UseDefaultValue")
    simple(sesv2, f"a@{domain}", ["x@dest.test"])
    with pytest.raises(ses.exceptions.ClientError) as e:
        ses.set_identity_mail_from_domain(Identity=domain, MailFromDomain=f"mail.{domain}",
                                          BehaviorOnMXFailure="Sometimes")
    assert e.value.response["Error"]["Code"] == "ValidationError"


def test_direct_reuses_connections_within_the_domain_limit(make_server, unique):
    with Sink(delay=0.02) as sink, Dns() as dns:
        dns.mx(f"busy-{unique}.test", f"mx.busy-{unique}.test")
        dns.a(f"mx.busy-{unique}.test")
        s = make_server(base_args(
            "--delivery", "direct", "--delivery-allow-private", "--dns-server", dns.address, "--smtp-port", str(sink.port),
            "--domain-concurrency", "2",
        ))
        conf = os.path.join(s.data_dir, "ops.toml")
        with open(conf, "w") as f:
            f.write("no_sandbox = true\n")
        s.sesame("--config", conf, "accounts", "set-quota", "--account", "111111111111",
                 "--region", "us-east-1", "--max-send-rate", "1000")
        sesv2 = s.client("sesv2")
        sesv2.create_email_identity(EmailIdentity=f"busy-{unique}.example.com")
        for i in range(20):
            simple(sesv2, f"a@busy-{unique}.example.com", [f"u{i}@busy-{unique}.test"])
        got = sink.wait_for(20)
        connections = {m.connection for m in got}
        assert len(connections) <= 2, f"{len(connections)} connections for one domain limited to 2"


def test_relay_with_implicit_tls(make_server, unique):
    with Sink(implicit_tls=True, auth=("u", "p")) as sink:
        s = make_server(base_args("--relay", f"smtps://u:p@127.0.0.1:{sink.port}?insecure=true"))
        sesv2 = s.client("sesv2")
        sesv2.create_email_identity(EmailIdentity=f"smtps-{unique}.example.com")
        simple(sesv2, f"a@smtps-{unique}.example.com", ["x@dest.test"])
        m = sink.wait_for(1)[0]
        assert m.login == "u"


def test_direct_uses_starttls_when_offered(make_server, unique):
    """The MX requires STARTTLS (and has a self-signed certificate, as MX
    hosts often do): opportunistic TLS upgrades anyway."""
    with Sink(tls=True) as sink, Dns() as dns:
        dns.mx(f"tls-{unique}.test", f"mx.tls-{unique}.test")
        dns.a(f"mx.tls-{unique}.test")
        s = make_server(base_args(
            "--delivery", "direct", "--delivery-allow-private", "--dns-server", dns.address, "--smtp-port", str(sink.port),
        ))
        sesv2 = s.client("sesv2")
        sesv2.create_email_identity(EmailIdentity=f"dtls-{unique}.example.com")
        simple(sesv2, f"a@dtls-{unique}.example.com", [f"x@tls-{unique}.test"])
        assert sink.wait_for(1)[0].tls


def test_send_bounce_delivers_a_dsn_to_the_original_sender(make_server, unique):
    """SendBounce (v1) builds an RFC 3464 report about a message Sesame
    holds and sends it, through the queue and the relay, DKIM-signed, to
    that message's sender; bad requests are refused as SES refuses them."""
    import email
    import email.policy

    import botocore.exceptions

    with Sink() as sink:
        s, sesv2, domain, txt, dest = relaying_byodkim(make_server, sink, unique, "dsn")
        ses = s.client("ses")
        original = simple(sesv2, f"sender@{domain}", [f"gone@{dest}", f"full@{dest}"])
        first = sink.wait_for(1)[0]
        original_id_header = email.message_from_bytes(first.data)["Message-ID"]
        bounce_id = ses.send_bounce(
            OriginalMessageId=original,
            BounceSender=f"mailer-daemon@{domain}",
            Explanation="Those mailboxes are gone.",
            MessageDsn={"ReportingMta": f"mx.{dest}", "ArrivalDate": "2026-12-04T10:00:00Z",
                        "ExtensionFields": [{"Name": "X-Sesame-Test", "Value": "yes"}]},
            BouncedRecipientInfoList=[
                {"Recipient": f"gone@{dest}", "BounceType": "DoesNotExist"},
                {"Recipient": f"full@{dest}", "RecipientDsnFields": {
                    "Action": "failed", "Status": "5.2.2", "DiagnosticCode": "552 mailbox full",
                    "RemoteMta": f"mx.{dest}"}},
            ],
        )["MessageId"]
        got = sink.wait_for(2)[1]
        assert got.rcpts == [f"sender@{domain}"], "the DSN goes to the original sender"
        assert got.mail_from == f"{bounce_id}@{BOUNCE_DOMAIN}"
        assert dkim_verifies(got.data, {f"sel1._domainkey.{domain}": txt})[0], "signed like any mail"
        m = email.message_from_bytes(got.data, policy=email.policy.default)
        assert m.get_content_type() == "multipart/report"
        assert m.get_param("report-type") == "delivery-status"
        assert m["From"] == f"mailer-daemon@{domain}"
        assert m["Subject"] == "Delivery Status Notification (Failure)"
        assert m["In-Reply-To"] == original_id_header
        text, status, headers = m.get_payload()
        assert "Those mailboxes are gone." in text.get_content()
        assert status.get_content_type() == "message/delivery-status"
        per_message, gone, full = status.get_payload()
        assert per_message["Reporting-MTA"] == f"dns; mx.{dest}"
        assert per_message["Arrival-Date"].endswith("10:00:00 +0000")
        assert per_message["X-Sesame-Test"] == "yes"
        assert (gone["Final-Recipient"], gone["Action"], gone["Status"]) == (f"rfc822; gone@{dest}", "failed", "5.1.1")
        assert (full["Status"], full["Diagnostic-Code"], full["Remote-MTA"]) == (
            "5.2.2", "smtp; 552 mailbox full", f"dns; mx.{dest}")
        assert headers.get_content_type() == "text/rfc822-headers"
        assert "Subject: Hello" in headers.get_payload()
        assert wait_events(s, 1, message_id=bounce_id)[0]["eventType"] == "Delivery"

        def refused(**kw):
            args = dict(OriginalMessageId=original, BounceSender=f"mailer-daemon@{domain}",
                        BouncedRecipientInfoList=[{"Recipient": f"gone@{dest}", "BounceType": "DoesNotExist"}])
            args.update(kw)
            with pytest.raises(botocore.exceptions.ClientError) as e:
                ses.send_bounce(**args)
            err = e.value.response["Error"]
            return err["Code"], err["Message"]

        code, message = refused(OriginalMessageId="0000000000000000-nope")
        assert code == "MessageRejected" and "0000000000000000-nope" in message
        assert refused(BounceSender="someone@unverified.test") == (
            "MessageRejected",
            "Email address is not verified. The following identities failed the check in region US-EAST-1: someone@unverified.test",
        )
        code, message = refused(BouncedRecipientInfoList=[{"Recipient": f"gone@{dest}"}])
        assert code == "InvalidParameterValue" and "BounceType or RecipientDsnFields" in message
        code, _ = refused(MessageDsn={"ReportingMta": "mx\r\nStatus: 2.0.0"})
        assert code == "InvalidParameterValue"
        code, message = refused(BouncedRecipientInfoList=[{"Recipient": f"gone@{dest}", "BounceType": "Nope"}])
        assert code == "ValidationError"
        assert "Member must satisfy enum value set: [ContentRejected, DoesNotExist, ExceededQuota, MessageTooLarge, TemporaryFailure, Undefined]" in message
        # In another region the message is not there.
        west = s.client("ses", region="eu-west-1")
        with pytest.raises(botocore.exceptions.ClientError) as e:
            west.send_bounce(OriginalMessageId=original, BounceSender=f"mailer-daemon@{domain}",
                             BouncedRecipientInfoList=[{"Recipient": f"gone@{dest}", "BounceType": "DoesNotExist"}])
        assert e.value.response["Error"]["Code"] == "MessageRejected"
        assert len(sink.wait_for(2)) == 2, "nothing else was sent"


def test_tls_policy_require_keeps_mail_off_unencrypted_hops(make_server, unique):
    """A configuration set's TlsPolicy REQUIRE: a receiver without
    STARTTLS (direct) or an unencrypted relay never gets the message; the
    attempt is a deferral (a DeliveryDelay event saying why), and mail
    through other sets still goes."""
    with Sink() as sink, Dns() as dns:
        dns.mx(f"plain-{unique}.test", f"mail.plain-{unique}.test")
        dns.a(f"mail.plain-{unique}.test")
        for mode in (["--delivery", "direct", "--delivery-allow-private", "--dns-server", dns.address,
                      "--smtp-port", str(sink.port)],
                     ["--delivery", "relay", "--relay", f"smtp://127.0.0.1:{sink.port}?tls=none"]):
            s = make_server(base_args(*mode))
            sesv2 = s.client("sesv2")
            sesv2.create_email_identity(EmailIdentity="example.com")
            sesv2.create_configuration_set(ConfigurationSetName="tls", DeliveryOptions={"TlsPolicy": "REQUIRE"})
            assert sesv2.get_configuration_set(ConfigurationSetName="tls")["DeliveryOptions"]["TlsPolicy"] == "REQUIRE"
            before = len(sink.messages())
            mid = sesv2.send_email(
                FromEmailAddress="sender@example.com", Destination={"ToAddresses": [f"to@plain-{unique}.test"]},
                Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
                ConfigurationSetName="tls")["MessageId"]
            delay = wait_events(s, 1, message_id=mid, type="DeliveryDelay")[0]
            assert "TLS is required" in delay["deliveryDelay"]["delayedRecipients"][0]["diagnosticCode"]
            assert len(sink.messages()) == before
            plain = simple(sesv2, "sender@example.com", [f"ok@plain-{unique}.test"])
            assert wait_events(s, 1, message_id=plain)[0]["eventType"] == "Delivery"
            s.stop()
