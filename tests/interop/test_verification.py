"""Email address verification for real: the identity gets a verification
email with a single-use link; opening the link verifies it."""
import email
import email.policy
import json
import re
import urllib.error
import urllib.request

import botocore.exceptions
import pytest


def verification_link(server, address):
    msgs = mailbox(server, system=True, recipient=address)
    assert msgs, f"no verification email for {address}"
    msg = email.message_from_string(msgs[0]["mime"], policy=email.policy.default)
    assert msg["Subject"] == "Sesame – Email Address Verification Request in region US-EAST-1"
    assert msg["From"] == "no-reply@sesame.localhost"
    body = msg.get_body(preferencelist=("plain",)).get_content()
    return re.search(r"(http://\S+/_sesame/verify/[A-Za-z0-9_-]+)", body).group(1), len(msgs)


from helpers import mailbox  # noqa: E402


def test_the_email_flow(make_server):
    s = make_server(["--dev"])
    sesv2, ses = s.client("sesv2"), s.client("ses")
    sesv2.create_email_identity(EmailIdentity="sender@example.com")
    sesv2.create_email_identity(EmailIdentity="friend@example.net")
    link, _ = verification_link(s, "sender@example.com")
    assert link.startswith(s.url + "/_sesame/verify/")
    assert sesv2.get_email_identity(EmailIdentity="sender@example.com")["VerificationStatus"] == "PENDING"
    with urllib.request.urlopen(link) as r:
        assert r.status == 200 and b"Email address verified" in r.read()
    got = sesv2.get_email_identity(EmailIdentity="sender@example.com")
    assert got["VerificationStatus"] == "SUCCESS" and got["VerifiedForSendingStatus"] is True
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(link)
    assert e.value.code == 404, "a link works once"

    # The sandbox still refuses the unverified recipient, until its link is opened.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.send_email(Source="sender@example.com", Destination={"ToAddresses": ["friend@example.net"]},
                       Message={"Subject": {"Data": "hi"}, "Body": {"Text": {"Data": "t"}}})
    assert e.value.response["Error"]["Message"].endswith(": friend@example.net")
    urllib.request.urlopen(verification_link(s, "friend@example.net")[0]).close()
    ses.send_email(Source="sender@example.com", Destination={"ToAddresses": ["friend@example.net"]},
                   Message={"Subject": {"Data": "hi"}, "Body": {"Text": {"Data": "t"}}})


def test_v1_resends_and_links_are_scoped(make_server):
    s = make_server(["--dev"])
    ses = s.client("ses")
    ses.verify_email_identity(EmailAddress="again@example.com")
    first, n = verification_link(s, "again@example.com")
    ses.verify_email_identity(EmailAddress="again@example.com")
    second, n2 = verification_link(s, "again@example.com")
    assert (n, n2) == (1, 2) and first != second
    # The new link replaced the old one.
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(first)
    urllib.request.urlopen(second).close()
    attrs = ses.get_identity_verification_attributes(Identities=["again@example.com"])["VerificationAttributes"]
    assert attrs["again@example.com"]["VerificationStatus"] == "Success"
    # Verified in us-east-1 only.
    west = s.client("ses", region="eu-west-1")
    assert west.get_identity_verification_attributes(Identities=["again@example.com"])["VerificationAttributes"] == {}
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(s.url + "/_sesame/verify/not-a-real-token")
    assert e.value.code == 404


def test_auto_verify_sends_no_link(make_server):
    s = make_server(["--dev", "--auto-verify"])
    s.client("sesv2").create_email_identity(EmailIdentity="auto@example.com")
    with urllib.request.urlopen(f"{s.url}/_sesame/messages") as r:
        assert json.loads(r.read())["messages"] == []
