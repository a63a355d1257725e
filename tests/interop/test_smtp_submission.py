"""SMTP submission with SES SMTP credentials, driven by Python's smtplib
and Debian's swaks over both ports: 587 with STARTTLS and 465 with
implicit TLS. The same rules as the API apply, with SES's SMTP replies."""
import base64
import hashlib
import hmac
import shutil
import smtplib
import ssl
import subprocess
import time
import urllib.request
import json

import pytest

from conftest import ROOT_KEY, ROOT_SECRET, free_port

ACCOUNT = ["--account", "111111111111", "--region", "us-east-1"]


def smtp_password(secret, region):
    """SES's version 4 SMTP password, as AWS's script in the SES guide
    computes it."""
    def sign(key, msg):
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()
    s = sign(("AWS4" + secret).encode(), "11111111")
    for part in (region, "ses", "aws4_request", "SendRawEmail"):
        s = sign(s, part)
    return base64.b64encode(bytes([4]) + s).decode()


def tls():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@pytest.fixture
def smtp(make_server):
    """A server with both listeners, a certificate of its own, and
    example.com verified. (--dev keeps the local mailbox; the root key's
    SMTP password is checked all the same, as known keys' are.)"""
    import os
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import datetime

    d = tempfile.mkdtemp(prefix="sesame-tls-")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtp.sesame.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    s = make_server(["--dev", "--smtp-listen", f"127.0.0.1:{free_port()}",
                     "--smtps-listen", f"127.0.0.1:{free_port()}", "--tls-cert", cert_path, "--tls-key", key_path])
    s.smtp_port = listening(s, "StartTls")
    s.smtps_port = listening(s, "ImplicitTls")
    sesv2 = s.client("sesv2")
    sesv2.create_email_identity(EmailIdentity="example.com")
    s.sesame("identities", "verify", *ACCOUNT, "example.com")
    # The sandbox stays; its rate of one a second would slow the tests.
    s.sesame("accounts", "set-quota", *ACCOUNT, "--max-send-rate", "100")
    return s


def listening(server, mode):
    """The port the server's SMTP listener of `mode` took, from its log."""
    import re
    return int(re.search(rf"SMTP listening addr=127\.0\.0\.1:(\d+) mode={mode}", server.read_log()).group(1))


def message(frm, to, subject="Hi", headers=""):
    return (f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n{headers}\r\nHello over SMTP.\r\n").encode()


def captured(server, recipient):
    with urllib.request.urlopen(f"{server.url}/_sesame/messages?recipient={recipient}") as r:
        return json.loads(r.read())["messages"]


def test_submission_over_both_ports_with_ses_credentials(smtp):
    password = smtp_password(ROOT_SECRET, "us-east-1")
    assert smtp.sesame("keys", "smtp-password", "--region", "us-east-1", ROOT_KEY).stdout.strip().endswith(password)

    with smtplib.SMTP("127.0.0.1", smtp.smtp_port, timeout=10) as c:
        code, caps = c.ehlo("client.test")
        assert b"STARTTLS" in caps and b"AUTH" not in caps, "no AUTH before TLS"
        code, reply = c.docmd("AUTH", "PLAIN " + base64.b64encode(f"\0{ROOT_KEY}\0{password}".encode()).decode())
        assert (code, reply) == (530, b"Must issue a STARTTLS command first")
        c.starttls(context=tls())
        code, caps = c.ehlo("client.test")
        assert b"AUTH PLAIN LOGIN" in caps and b"PIPELINING" in caps and b"SIZE" in caps and b"CHUNKING" in caps
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            c.login(ROOT_KEY, "wrong")
        assert e.value.smtp_code == 535 and e.value.smtp_error == b"Authentication Credentials Invalid"
        c.login(ROOT_KEY, password)
        code, reply = c.docmd("MAIL", "FROM:<sender@example.com>")
        assert code == 250
        c.docmd("RCPT", "TO:<success@simulator.amazonses.com>")
        code, reply = c.data(message("sender@example.com", "success@simulator.amazonses.com"))
        assert code == 250 and reply.startswith(b"Ok "), reply
        mid = reply.decode().split()[1]

    with smtplib.SMTP_SSL("127.0.0.1", smtp.smtps_port, context=tls(), timeout=10) as c:
        c.login(ROOT_KEY, password)  # AUTH LOGIN or PLAIN, as smtplib picks
        refused = c.sendmail("sender@example.com", ["success@simulator.amazonses.com"],
                             message("sender@example.com", "success@simulator.amazonses.com"))
        assert refused == {}

    events = json.loads(urllib.request.urlopen(f"{smtp.url}/_sesame/events?message_id={mid}").read())["events"]
    deadline = time.time() + 10
    while not any(e["eventType"] == "Delivery" for e in events) and time.time() < deadline:
        time.sleep(0.2)
        events = json.loads(urllib.request.urlopen(f"{smtp.url}/_sesame/events?message_id={mid}").read())["events"]
    assert any(e["eventType"] == "Delivery" for e in events)


def test_the_apis_rules_with_ses_smtp_replies(smtp):
    password = smtp_password(ROOT_SECRET, "us-east-1")
    with smtplib.SMTP_SSL("127.0.0.1", smtp.smtps_port, context=tls(), timeout=10) as c:
        c.login(ROOT_KEY, password)
        # The sandbox: an unverified recipient.
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail("sender@example.com", ["stranger@elsewhere.test"],
                       message("sender@example.com", "stranger@elsewhere.test"))
        assert e.value.smtp_code == 554
        assert e.value.smtp_error.decode() == (
            "Message rejected: Email address is not verified. The following identities failed the check in "
            "region US-EAST-1: stranger@elsewhere.test")
        # An unverified sender.
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail("nobody@unverified.test", ["success@simulator.amazonses.com"],
                       message("nobody@unverified.test", "success@simulator.amazonses.com"))
        assert e.value.smtp_code == 554 and b"nobody@unverified.test" in e.value.smtp_error

    # Configuration-set headers take effect and are removed.
    sesv2 = smtp.client("sesv2")
    sesv2.create_configuration_set(ConfigurationSetName="paused")
    sesv2.put_configuration_set_sending_options(ConfigurationSetName="paused", SendingEnabled=False)
    with smtplib.SMTP_SSL("127.0.0.1", smtp.smtps_port, context=tls(), timeout=10) as c:
        c.login(ROOT_KEY, password)
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail("sender@example.com", ["success@simulator.amazonses.com"],
                       message("sender@example.com", "success@simulator.amazonses.com",
                               headers="X-SES-CONFIGURATION-SET: paused\r\n"))
        assert e.value.smtp_code == 554 and b"Sending is paused for the configuration set <paused>." in e.value.smtp_error
        sesv2.create_configuration_set(ConfigurationSetName="tagged")
        c.sendmail("sender@example.com", ["success@simulator.amazonses.com"],
                   message("sender@example.com", "success@simulator.amazonses.com", subject="Tagged",
                           headers="X-SES-CONFIGURATION-SET: tagged\r\nX-SES-MESSAGE-TAGS: campaign=spring, team=growth\r\n"))
    [m] = [m for m in captured(smtp, "success@simulator.amazonses.com") if m["subject"] == "Tagged"]
    assert "X-SES-" not in m["mime"]
    insight = sesv2.get_message_insights(MessageId=m["id"])
    assert {"Name": "campaign", "Value": "spring"} in insight["EmailTags"]

    # The daily quota (the sandbox's is lowered for the test; mail to the
    # simulator does not count, as in SES).
    smtp.sesame("accounts", "set-quota", *ACCOUNT, "--max-24h-send", "1")
    with smtplib.SMTP_SSL("127.0.0.1", smtp.smtps_port, context=tls(), timeout=10) as c:
        c.login(ROOT_KEY, password)
        c.sendmail("sender@example.com", ["friend@example.com"], message("sender@example.com", "friend@example.com"))
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail("sender@example.com", ["friend@example.com"],
                       message("sender@example.com", "friend@example.com"))
        assert (e.value.smtp_code, e.value.smtp_error) == (454, b"Throttling failure: Daily message quota exceeded.")


def test_swaks_submits_over_both_ports(smtp):
    swaks = shutil.which("swaks")
    assert swaks, "swaks is installed by scripts/test.sh"
    password = smtp_password(ROOT_SECRET, "us-east-1")
    for port, mode in [(smtp.smtp_port, "--tls"), (smtp.smtps_port, "--tls-on-connect")]:
        p = subprocess.run([swaks, "--server", f"127.0.0.1:{port}", mode, "--auth", "PLAIN", "--auth-user", ROOT_KEY,
                            "--auth-password", password, "--from", "sender@example.com",
                            "--to", "success@simulator.amazonses.com", "--header", f"Subject: swaks {mode}"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "<~  250 Ok " in p.stdout


def test_dev_accepts_any_credentials_and_sizes_are_limited(smtp):
    """--dev takes unknown keys with any password, as its API does; a
    message declared over SES's 10 MB is refused at MAIL."""
    with smtplib.SMTP_SSL("127.0.0.1", smtp.smtps_port, context=tls(), timeout=10) as c:
        c.login("AKIAANYTHINGATALL000", "any password")
        code, reply = c.docmd("MAIL", "FROM:<sender@example.com> SIZE=20000000")
        assert code == 552 and b"maximum message size" in reply
        code, _ = c.docmd("RCPT", "TO:<success@simulator.amazonses.com>")
        assert code == 503, "no transaction after a refused MAIL"
