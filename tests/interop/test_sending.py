"""Sending under SES's rules, walked with boto3 and the AWS CLI: the
sandbox, verification per region, production access, quotas, and the local
mailbox."""
import base64
import concurrent.futures
import json
import time
import urllib.request

import botocore.exceptions
import pytest

from conftest import ROOT_ACCOUNT


from helpers import error as err
from helpers import mailbox


@pytest.fixture
def dev(make_server):
    return make_server(["--dev"])


def verify(server, region, *names):
    for n in names:
        c = server.client("sesv2", region=region)
        try:
            c.create_email_identity(EmailIdentity=n)
        except botocore.exceptions.ClientError:
            pass
        server.sesame("identities", "verify", "--account", ROOT_ACCOUNT, "--region", region, n)


def send(ses, source, to, subject="Hello"):
    return ses.send_email(
        Source=source,
        Destination={"ToAddresses": to},
        Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": "body text"}}},
    )["MessageId"]


def test_the_sandbox_walk(dev):
    ses = dev.client("ses")
    verify(dev, "us-east-1", "sender@example.com")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        send(ses, "sender@example.com", ["friend@gmail.com"])
    assert err(e) == (
        "MessageRejected",
        "Email address is not verified. The following identities failed the check in region US-EAST-1: friend@gmail.com",
    )
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    verify(dev, "us-east-1", "friend@gmail.com")
    time.sleep(1.1)  # the sandbox sends one recipient per second
    mid = send(ses, "Sender Name <sender@example.com>", ["friend@gmail.com"], subject="Grüße")
    parts = mid.split("-")
    assert len(parts) == 7 and len(parts[0]) == 16 and parts[-1] == "000000"
    [m] = mailbox(dev, recipient="friend@gmail.com")
    assert m["id"] == mid
    assert m["source"] == "sender@example.com"
    assert m["destinations"] == ["friend@gmail.com"]
    assert m["subject"] == "Grüße"
    assert "=?utf-8?" in m["mime"].lower() and "Message-ID: <" in m["mime"]
    with urllib.request.urlopen(f"{dev.url}/_sesame/messages/{mid}/raw") as r:
        assert r.headers["Content-Type"] == "message/rfc822"
        assert b"body text" in r.read()

    # The mailbox simulator is allowed in the sandbox and not counted.
    before = ses.get_send_quota()
    assert before["Max24HourSend"] == 200.0 and before["MaxSendRate"] == 1.0
    time.sleep(1.1)
    send(ses, "sender@example.com", ["success+label@simulator.amazonses.com"])
    assert ses.get_send_quota()["SentLast24Hours"] == before["SentLast24Hours"] == 1.0

    # Verified in us-east-1 is nothing in eu-west-1.
    west = dev.client("ses", region="eu-west-1")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        send(west, "sender@example.com", ["friend@gmail.com"])
    assert err(e)[1] == (
        "Email address is not verified. The following identities failed the check in region EU-WEST-1: "
        "sender@example.com, friend@gmail.com"
    )


def test_production_access_walk(dev):
    sesv2 = dev.client("sesv2")
    verify(dev, "us-east-1", "example.com")
    acct = sesv2.get_account()
    assert acct["ProductionAccessEnabled"] is False
    assert acct["SendQuota"] == {"Max24HourSend": 200.0, "MaxSendRate": 1.0, "SentLast24Hours": 0.0}
    assert acct["EnforcementStatus"] == "HEALTHY"
    sesv2.put_account_details(
        MailType="TRANSACTIONAL",
        WebsiteURL="https://example.com",
        UseCaseDescription="Receipts for our shop.",
        ProductionAccessEnabled=True,
    )
    review = sesv2.get_account()["Details"]["ReviewDetails"]
    assert review["Status"] == "PENDING" and review["CaseId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.put_account_details(MailType="MARKETING", WebsiteURL="https://example.com")
    assert e.value.response["Error"]["Code"] == "ConflictException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409

    out = dev.sesame("accounts", "approve", "--account", ROOT_ACCOUNT, "--region", "us-east-1").stdout
    assert "production" in out
    acct = sesv2.get_account()
    assert acct["ProductionAccessEnabled"] is True
    assert acct["Details"]["ReviewDetails"]["Status"] == "GRANTED"
    assert acct["SendQuota"]["Max24HourSend"] == 50000.0 and acct["SendQuota"]["MaxSendRate"] == 14.0
    r = sesv2.send_email(
        FromEmailAddress="shop@example.com",
        Destination={"ToAddresses": ["anyone@gmail.com"], "BccAddresses": ["audit@gmail.com"]},
        Content={"Simple": {"Subject": {"Data": "Receipt"}, "Body": {"Text": {"Data": "t"}, "Html": {"Data": "<p>h</p>"}}}},
    )
    [m] = mailbox(dev, recipient="audit@gmail.com")
    assert m["id"] == r["MessageId"]
    assert "multipart/alternative" in m["mime"] and "audit@gmail.com" not in m["mime"].split("\r\n\r\n")[0]

    # Only that region left the sandbox.
    verify(dev, "us-west-2", "example.com")
    west = dev.client("sesv2", region="us-west-2")
    assert west.get_account()["ProductionAccessEnabled"] is False
    with pytest.raises(botocore.exceptions.ClientError) as e:
        west.send_email(
            FromEmailAddress="shop@example.com",
            Destination={"ToAddresses": ["anyone@gmail.com"]},
            Content={"Simple": {"Subject": {"Data": "x"}, "Body": {"Text": {"Data": "t"}}}},
        )
    assert err(e) == (
        "MessageRejected",
        "Email address is not verified. The following identities failed the check in region US-WEST-2: anyone@gmail.com",
    )


def test_deny(dev):
    sesv2 = dev.client("sesv2", region="ap-northeast-1")
    sesv2.put_account_details(MailType="MARKETING", WebsiteURL="https://x.example", ProductionAccessEnabled=True)
    dev.sesame("accounts", "deny", "--account", ROOT_ACCOUNT, "--region", "ap-northeast-1")
    acct = sesv2.get_account()
    assert acct["Details"]["ReviewDetails"]["Status"] == "DENIED"
    assert acct["ProductionAccessEnabled"] is False


def test_throttling(dev):
    ses = dev.client("ses")
    sesv2 = dev.client("sesv2")
    verify(dev, "us-east-1", "example.com")
    assert ses.get_send_quota()["MaxSendRate"] == 1.0, "the sandbox sends one message a second"
    # A rate so low the bucket cannot refill during the test: at the
    # default one a second, whether a second send is refused would depend
    # on how quickly this machine makes it.
    dev.sesame("accounts", "set-quota", "--account", ROOT_ACCOUNT, "--region", "us-east-1", "--max-send-rate", "0.001")
    time.sleep(1.1)  # the bucket refills to its cap (0.001): one send, then a long debt
    send(ses, "a@example.com", ["b@example.com"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        send(ses, "a@example.com", ["b@example.com"])
    assert err(e) == ("Throttling", "Maximum sending rate exceeded")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.send_email(
            FromEmailAddress="a@example.com",
            Destination={"ToAddresses": ["b@example.com"]},
            Content={"Simple": {"Subject": {"Data": "x"}, "Body": {"Text": {"Data": "t"}}}},
        )
    assert e.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429

    dev.sesame("accounts", "set-quota", "--account", ROOT_ACCOUNT, "--region", "us-east-1",
               "--max-24h-send", "3", "--max-send-rate", "100")
    sent = ses.get_send_quota()["SentLast24Hours"]
    send(ses, "a@example.com", [f"x{i}@example.com" for i in range(int(3 - sent))])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        send(ses, "a@example.com", ["b@example.com"])
    assert err(e) == ("Throttling", "Daily message quota exceeded")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.send_email(
            FromEmailAddress="a@example.com",
            Destination={"ToAddresses": ["b@example.com"]},
            Content={"Simple": {"Subject": {"Data": "x"}, "Body": {"Text": {"Data": "t"}}}},
        )
    assert err(e) == ("LimitExceededException", "Daily message quota exceeded")
    q = ses.get_send_quota()
    assert (q["Max24HourSend"], q["SentLast24Hours"]) == (3.0, 3.0)
    stats = ses.get_send_statistics()["SendDataPoints"]
    assert sum(p["DeliveryAttempts"] for p in stats) == 3


def test_concurrent_senders_never_exceed_the_quota(dev):
    verify(dev, "us-east-1", "example.com")
    dev.sesame("accounts", "set-quota", "--account", ROOT_ACCOUNT, "--region", "us-east-1",
               "--max-24h-send", "20", "--max-send-rate", "100000")

    def one(i):
        ses = dev.client("ses")
        try:
            send(ses, "a@example.com", [f"r{i}@example.com"])
            return "ok"
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]["Message"]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(60)))
    assert results.count("ok") == 20, results
    assert set(results) == {"ok", "Daily message quota exceeded"}
    assert len(mailbox(dev, limit="1000")) == 20


def test_raw_and_v2_raw(dev):
    verify(dev, "us-east-1", "example.com")
    dev.sesame("accounts", "set-quota", "--account", ROOT_ACCOUNT, "--region", "us-east-1", "--max-send-rate", "100")
    raw = (b"From: Shop <shop@example.com>\r\nTo: b@example.com\r\nBcc: hidden@example.com\r\n"
           b"Subject: raw one\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nraw body\r\n")
    mid = dev.client("ses").send_raw_email(RawMessage={"Data": raw})["MessageId"]
    [m] = mailbox(dev, recipient="hidden@example.com")
    assert m["id"] == mid and m["subject"] == "raw one"
    assert "hidden@example.com" not in m["mime"]
    r = dev.client("sesv2").send_email(
        Destination={"ToAddresses": ["only-envelope@example.com"]},
        Content={"Raw": {"Data": raw}},
    )
    [m] = mailbox(dev, recipient="only-envelope@example.com")
    assert m["id"] == r["MessageId"] and m["destinations"] == ["only-envelope@example.com"]
    # An unverified From header is refused even when the envelope is fine.
    bad = raw.replace(b"shop@example.com", b"evil@elsewhere.com")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        dev.client("ses").send_raw_email(Source="shop@example.com", RawMessage={"Data": bad})
    assert err(e)[1].endswith(": Shop <evil@elsewhere.com>")


def test_large_requests_wait_for_room_and_all_go_through(make_server):
    """With room for about one 1 MB request in hand at a time
    (--request-memory 3: each body counts three times), four large raw
    sends at once still all succeed, on both APIs; one larger than the
    whole budget goes alone."""
    s = make_server(["--dev", "--request-memory", "3"])
    verify(s, "us-east-1", "example.com")
    s.sesame("accounts", "set-quota", "--account", ROOT_ACCOUNT, "--region", "us-east-1", "--max-send-rate", "100")
    body = b"x" * 76 + b"\r\n"

    def raw(n, size):
        return (f"From: shop@example.com\r\nTo: big{n}@example.com\r\nSubject: big {n}\r\n\r\n".encode()
                + body * (size // len(body)))

    def v1(n):
        return s.client("ses").send_raw_email(RawMessage={"Data": raw(n, 700_000)})["MessageId"]

    def v2(n):
        return s.client("sesv2").send_email(Content={"Raw": {"Data": raw(n, 700_000)}})["MessageId"]

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        ids = list(ex.map(lambda f: f[0](f[1]), [(v1, 0), (v2, 1), (v1, 2), (v2, 3)]))
    big = s.client("sesv2").send_email(Content={"Raw": {"Data": raw(4, 2_000_000)}})["MessageId"]
    for n, mid in enumerate(ids + [big]):
        [m] = mailbox(s, recipient=f"big{n}@example.com")
        assert m["id"] == mid


def test_input_errors(dev):
    ses = dev.client("ses")
    verify(dev, "us-east-1", "example.com")
    dev.sesame("accounts", "set-quota", "--account", ROOT_ACCOUNT, "--region", "us-east-1", "--max-send-rate", "100")
    for to, msg in ((["nobody"], "Missing final '@domain'"), ([f"r{i}@example.com" for i in range(51)], "Recipient count exceeds 50.")):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            send(ses, "a@example.com", to)
        assert err(e) == ("InvalidParameterValue", msg)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.send_email(Source="a@example.com", Destination={"ToAddresses": ["b@example.com"]},
                       Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}},
                       Tags=[{"Name": "test_invalid_name:123", "Value": "v"}])
    assert err(e) == ("InvalidParameterValue",
                      "Invalid tag name <test_invalid_name:123>: only alphanumeric ASCII characters, '_',  '-' are allowed.")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.send_email(Source="a@example.com", Destination={"ToAddresses": ["b@example.com"]},
                       Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}, ConfigurationSetName="nope")
    assert err(e) == ("ConfigurationSetDoesNotExist", "Configuration set <nope> does not exist.")
    assert mailbox(dev) == [], "refused sends store nothing"


def test_sending_paused(dev):
    ses, sesv2 = dev.client("ses"), dev.client("sesv2")
    verify(dev, "us-east-1", "example.com")
    ses.update_account_sending_enabled(Enabled=False)
    assert ses.get_account_sending_enabled()["Enabled"] is False
    with pytest.raises(botocore.exceptions.ClientError) as e:
        send(ses, "a@example.com", ["b@example.com"])
    assert err(e)[0] == "AccountSendingPausedException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.send_email(FromEmailAddress="a@example.com", Destination={"ToAddresses": ["b@example.com"]},
                         Content={"Simple": {"Subject": {"Data": "x"}, "Body": {"Text": {"Data": "t"}}}})
    assert err(e)[0] == "SendingPausedException"
    sesv2.put_account_sending_attributes(SendingEnabled=True)
    assert sesv2.get_account()["SendingEnabled"] is True


def test_cli_sends(dev):
    verify(dev, "us-east-1", "example.com")
    dev.sesame("accounts", "set-quota", "--account", ROOT_ACCOUNT, "--region", "us-east-1", "--max-send-rate", "100")
    out = json.loads(dev.cli("ses", "send-email", "--from", "a@example.com", "--to", "b@example.com",
                             "--subject", "cli", "--text", "hello").stdout)
    assert out["MessageId"]
    out = json.loads(dev.cli("sesv2", "send-email", "--from-email-address", "a@example.com",
                             "--destination", "ToAddresses=c@example.com",
                             "--content", "Simple={Subject={Data=cli2},Body={Text={Data=hi}}}").stdout)
    assert [m["id"] for m in mailbox(dev, recipient="c@example.com")] == [out["MessageId"]]
    p = dev.cli("ses", "send-email", "--from", "a@example.com", "--to", "x@gmail.com", "--subject", "s", "--text", "t", check=False)
    assert p.returncode != 0 and "MessageRejected" in p.stderr and "x@gmail.com" in p.stderr
    q = json.loads(dev.cli("ses", "get-send-quota").stdout)
    assert q["SentLast24Hours"] == 2.0


def test_mailbox_is_dev_only_and_clears(make_server, dev):
    prod = make_server()
    try:
        urllib.request.urlopen(prod.url + "/_sesame/messages")
        raise AssertionError("the mailbox must not be served outside --dev")
    except urllib.error.HTTPError as e:
        assert e.code == 404
    verify(dev, "us-east-1", "example.com")
    send(dev.client("ses"), "a@example.com", ["success@simulator.amazonses.com"])
    req = urllib.request.Request(dev.url + "/_sesame/messages", method="DELETE")
    with urllib.request.urlopen(req) as r:
        assert json.loads(r.read()) == {"deleted": 1}
    assert mailbox(dev) == []
