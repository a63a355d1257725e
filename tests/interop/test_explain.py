"""`sesame explain`: a refused send found by the RequestId its error
carried, for each of the sandbox's four causes of MessageRejected (an
unverified sender, an unverified recipient, no production access, an
identity verified in another region); a message by its MessageId; an
address."""
import time

import botocore.exceptions
import pytest


def send(client, sender, to):
    return client.send_email(FromEmailAddress=sender, Destination={"ToAddresses": [to]},
                             Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}})


def refused(client, sender, to):
    """The RequestId of a refused send, as the SDK reports it."""
    with pytest.raises(botocore.exceptions.ClientError) as e:
        send(client, sender, to)
    assert e.value.response["Error"]["Code"] == "MessageRejected"
    request_id = e.value.response["ResponseMetadata"]["RequestId"]
    assert request_id
    return request_id


def explain(server, what):
    p = server.sesame("explain", what, check=False)
    return p.returncode, p.stdout, p.stderr


def test_each_cause_of_a_sandbox_refusal(make_server):
    s = make_server(["--dev", "--auto-verify"])
    sesv2 = s.client("sesv2")

    # 1. The sender is not verified.
    rid = refused(sesv2, "nobody@unknown.example", "success@simulator.amazonses.com")
    code, out, _ = explain(s, rid)
    assert code == 0, out
    assert "Email address is not verified" in out and "us-east-1" in out
    assert "The sender nobody@unknown.example is not verified in us-east-1" in out
    assert "aws sesv2 create-email-identity --email-identity nobody@unknown.example --region us-east-1" in out

    # 2. The recipient is not verified, and 3. production access has not
    # been granted: the sandbox.
    sesv2.create_email_identity(EmailIdentity="example.com")
    rid = refused(sesv2, "sender@example.com", "stranger@elsewhere.example")
    code, out, _ = explain(s, rid)
    assert "The recipient stranger@elsewhere.example is not verified in us-east-1" in out
    assert "The account is in the sandbox in us-east-1" in out
    assert "Production access has not been requested in us-east-1" in out
    assert "aws sesv2 put-account-details --production-access-enabled" in out
    assert "The sender" not in out, "the sender is verified"

    sesv2.put_account_details(MailType="TRANSACTIONAL", WebsiteURL="https://example.com",
                              UseCaseDescription="receipts", ProductionAccessEnabled=True)
    rid = refused(sesv2, "sender@example.com", "stranger@elsewhere.example")
    _, out, _ = explain(s, rid)
    assert "Production access was requested" in out and "PENDING" in out.upper()
    assert "sesame accounts approve --account 111111111111 --region us-east-1" in out

    # 4. The identity is verified in another region.
    s.client("sesv2", region="eu-west-1").create_email_identity(EmailIdentity="eu.example")
    rid = refused(sesv2, "sender@eu.example", "success@simulator.amazonses.com")
    _, out, _ = explain(s, rid)
    assert "sender@eu.example is verified in eu-west-1, not in us-east-1" in out
    assert "--region eu-west-1" in out


def test_messages_addresses_and_the_unknown(make_server):
    s = make_server(["--dev", "--auto-verify", "--no-sandbox"])
    sesv2 = s.client("sesv2")
    sesv2.create_email_identity(EmailIdentity="example.com")
    mid = send(sesv2, "sender@example.com", "bounce@simulator.amazonses.com")["MessageId"]
    deadline = time.time() + 20
    out = ""
    while time.time() < deadline:
        code, out, _ = explain(s, mid)
        if "Bounced" in out:
            break
        time.sleep(0.2)
    assert code == 0 and f"Message {mid}" in out
    assert "Bounced (Permanent General) for bounce@simulator.amazonses.com" in out

    code, out, _ = explain(s, "sender@example.com")
    assert code == 0 and "Identity example.com in account 111111111111 region us-east-1: Success" in out

    code, _, err = explain(s, "no-such-request")
    assert code != 0 and "nothing is known as no-such-request" in err
