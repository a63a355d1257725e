"""Inbound feedback: the bounce domain's MX (`--inbound-listen`) takes
DSNs (RFC 3464) for Sesame's return paths and ARF reports (RFC 5965) for
its feedback-loop address, refuses every other recipient (no relay, no
backscatter), and records SES's events with their consequences."""
import json
import smtplib
import time
import urllib.request

import pytest

from conftest import free_port
from test_smtp_submission import listening

BOUNCES = "bounces.sesame.test"


@pytest.fixture
def inbound(make_server):
    s = make_server(["--dev", "--no-sandbox", "--auto-verify", "--bounce-domain", BOUNCES,
                     "--inbound-listen", f"127.0.0.1:{free_port()}"])
    s.inbound_port = listening(s, "Inbound")
    s.client("sesv2").create_email_identity(EmailIdentity="example.com")
    return s


def sent(server, to):
    return server.client("sesv2").send_email(
        FromEmailAddress="news@example.com", Destination={"ToAddresses": [to]},
        Content={"Simple": {"Subject": {"Data": "Hello"}, "Body": {"Text": {"Data": "b"}}}})["MessageId"]


def events(server, mid, kind):
    deadline = time.time() + 10
    while time.time() < deadline:
        with urllib.request.urlopen(f"{server.url}/_sesame/events?message_id={mid}") as r:
            got = [e for e in json.loads(r.read())["events"] if e["eventType"] == kind]
        if got:
            return got
        time.sleep(0.1)
    return []


def report(kind, fields, original=None):
    """A multipart/report, written out as a receiving MTA writes one."""
    b = "REPORT-BOUNDARY"
    parts = [f"--{b}\r\nContent-Type: text/plain\r\n\r\nA human-readable explanation.\r\n",
             f"--{b}\r\nContent-Type: message/{kind}\r\n\r\n{fields}"]
    if original:
        parts.append(f"--{b}\r\nContent-Type: text/rfc822-headers\r\n\r\n{original}")
    return (f"From: MAILER-DAEMON@mx.example.org\r\nSubject: Report\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: multipart/report; report-type={kind}; boundary=\"{b}\"\r\n\r\n"
            + "".join(parts) + f"--{b}--\r\n").encode()


def test_a_dsn_for_a_return_path_becomes_a_bounce(inbound):
    mid = sent(inbound, "gone@example.org")
    with smtplib.SMTP("127.0.0.1", inbound.inbound_port, timeout=10) as c:
        c.ehlo("mx.example.org")
        # Not a return path of this server: refused at RCPT, so no relay and no backscatter.
        code, _ = c.docmd("MAIL", "FROM:<>")
        assert code == 250
        code, reply = c.docmd("RCPT", "TO:<someone@elsewhere.test>")
        assert code == 550 and b"not a return path" in reply
        code, _ = c.docmd("RCPT", f"TO:<0000-not-a-message@{BOUNCES}>")
        assert code == 550
        c.rset()
        dsn = report("delivery-status",
                     "Reporting-MTA: dns; mx.example.org\r\nArrival-Date: Sat, 5 Dec 2026 09:00:00 +0000\r\n\r\n"
                     "Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
                     "Diagnostic-Code: smtp; 550 5.1.1 <gone@example.org>: user unknown\r\n")
        c.sendmail("", [f"{mid}@{BOUNCES}"], dsn)
    [b] = events(inbound, mid, "Bounce")
    assert b["bounce"]["bounceType"] == "Permanent" and b["bounce"]["bounceSubType"] == "NoEmail"
    r = b["bounce"]["bouncedRecipients"][0]
    assert r["emailAddress"] == "gone@example.org" and r["status"] == "5.1.1"
    assert r["diagnosticCode"] == "smtp; 550 5.1.1 <gone@example.org>: user unknown"
    assert b["bounce"]["reportingMTA"] == "dns; mx.example.org"
    # As any hard bounce: the address is now suppressed.
    deadline = time.time() + 10
    while time.time() < deadline:
        got = inbound.client("sesv2").list_suppressed_destinations()["SuppressedDestinationSummaries"]
        if got:
            break
        time.sleep(0.2)
    assert [d["EmailAddress"] for d in got] == ["gone@example.org"]

    # A delayed action is a DeliveryDelay.
    mid2 = sent(inbound, "slow@example.org")
    with smtplib.SMTP("127.0.0.1", inbound.inbound_port, timeout=10) as c:
        c.sendmail("", [f"{mid2}@{BOUNCES}"], report(
            "delivery-status", "Reporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; slow@example.org\r\n"
            "Action: delayed\r\nStatus: 4.2.2\r\nDiagnostic-Code: smtp; 452 4.2.2 mailbox full\r\n"))
    [d] = events(inbound, mid2, "DeliveryDelay")
    assert d["deliveryDelay"]["delayedRecipients"][0]["emailAddress"] == "slow@example.org"


def test_an_arf_report_becomes_a_complaint(inbound):
    mid = sent(inbound, "reader@example.org")
    original = f"Message-ID: <{mid}@example.com>\r\nFrom: news@example.com\r\nTo: reader@example.org\r\n"
    arf = report("feedback-report",
                 "Feedback-Type: abuse\r\nUser-Agent: ExampleISP-FBL/1.0\r\nVersion: 1\r\n"
                 "Original-Rcpt-To: <reader@example.org>\r\nArrival-Date: Sat, 5 Dec 2026 09:00:00 +0000\r\n",
                 original)
    with smtplib.SMTP("127.0.0.1", inbound.inbound_port, timeout=10) as c:
        c.sendmail("fbl@isp.example", [f"complaints@{BOUNCES}"], arf)
    [c] = events(inbound, mid, "Complaint")
    assert c["complaint"]["complainedRecipients"] == [{"emailAddress": "reader@example.org"}]
    assert c["complaint"]["userAgent"] == "ExampleISP-FBL/1.0"
    assert c["complaint"]["complaintFeedbackType"] == "abuse"
    assert c["complaint"]["arrivalDate"] == "2026-12-05T09:00:00.000Z"


def test_a_real_mta_that_fails_later_sends_its_dsn_here(make_server):
    """Postfix accepts the message at SMTP time, fails it at local delivery
    (no such user), and sends its own DSN to the return path; Sesame's
    inbound listener turns it into a Bounce of the right message."""
    from peers import Postfix

    inbound_port = free_port()
    with Postfix("dest.test", BOUNCES, f"127.0.0.1:{inbound_port}") as postfix:
        s = make_server(["--dev", "--no-sandbox", "--auto-verify", "--bounce-domain", BOUNCES,
                         "--inbound-listen", f"127.0.0.1:{inbound_port}",
                         "--delivery", "relay", "--relay", f"smtp://127.0.0.1:{postfix.port}?tls=none"])
        s.client("sesv2").create_email_identity(EmailIdentity="example.com")
        mid = sent(s, "nosuchuser@dest.test")
        deadline = time.time() + 30
        bounces = []
        while time.time() < deadline and not bounces:
            bounces = events(s, mid, "Bounce")
        assert bounces, postfix.log()[-3000:] + s.read_log()[-2000:]
        b = bounces[0]["bounce"]
        assert b["bounceType"] == "Permanent" and b["bounceSubType"] == "NoEmail"
        assert b["bouncedRecipients"][0]["emailAddress"] == "nosuchuser@dest.test"
        assert b["reportingMTA"] == "dns; mx.dest.test"
        # The relay took it first: a Delivery, then the later Bounce, as in SES.
        assert events(s, mid, "Delivery")
        assert "status=sent (250 Ok)" in postfix.log(), "the DSN reached Sesame's inbound listener"
