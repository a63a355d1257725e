"""The account-level suppression list, with boto3 and the AWS CLI against
a real SMTP receiver on loopback: a hard bounce puts the address on the
list, the next send to it is accepted and bounces (OnAccountSuppressionList)
without reaching the receiver, a configuration set's SuppressionOptions
override the account's reasons, and the list's operations behave as SES's."""
import json
import time
import urllib.request

import botocore.exceptions
import pytest

from helpers import error as err
from peers import RustSink


def events(server, **query):
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    with urllib.request.urlopen(f"{server.url}/_sesame/events?{qs}") as r:
        return json.loads(r.read())["events"]


def wait_for(pred, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError("timed out")


def send(sesv2, to, cs=None):
    args = dict(FromEmailAddress="sender@example.com", Destination={"ToAddresses": [to]},
                Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}})
    if cs:
        args["ConfigurationSetName"] = cs
    return sesv2.send_email(**args)["MessageId"]


def test_a_hard_bounce_suppresses_the_next_send(make_server):
    with RustSink() as sink:
        s = make_server(["--dev", "--auto-verify", "--no-sandbox", "--delivery", "relay",
                         "--relay", f"smtp://127.0.0.1:{sink.port}?tls=none"])
        sesv2 = s.client("sesv2")
        sesv2.create_email_identity(EmailIdentity="example.com")
        assert sesv2.get_account()["SuppressionAttributes"]["SuppressedReasons"] == ["BOUNCE", "COMPLAINT"]

        first = send(sesv2, "refuse550@dest.test")
        wait_for(lambda: [e for e in events(s, message_id=first) if e["eventType"] == "Bounce"])
        entry = wait_for(lambda: _get(sesv2, "refuse550@dest.test"))
        assert entry["Reason"] == "BOUNCE"
        assert entry["Attributes"]["MessageId"] == first

        # Accepted, then bounced from the list: nothing reaches the receiver.
        sink_before = len(sink.messages())
        second = send(sesv2, "Refuse550@Dest.test")
        bounce = wait_for(lambda: [e for e in events(s, message_id=second) if e["eventType"] == "Bounce"])[0]
        assert bounce["bounce"]["bounceSubType"] == "OnAccountSuppressionList"
        assert bounce["bounce"]["bounceType"] == "Permanent"
        assert len(sink.messages()) == sink_before

        # A set whose SuppressionOptions name no reasons bypasses the list.
        sesv2.create_configuration_set(ConfigurationSetName="no-suppression",
                                       SuppressionOptions={"SuppressedReasons": []})
        assert sesv2.get_configuration_set(ConfigurationSetName="no-suppression")["SuppressionOptions"] == {
            "SuppressedReasons": []}
        ok = send(sesv2, "ok@dest.test")
        d = wait_for(lambda: [e for e in events(s, message_id=ok) if e["eventType"] == "Delivery"])[0]
        # SES's automatic tags: where the request came from, and the
        # address the message left from (the relay connection's).
        assert d["mail"]["tags"]["ses:source-ip"] == ["127.0.0.1"]
        assert d["mail"]["tags"]["ses:outgoing-ip"] == ["127.0.0.1"]
        assert d["mail"]["tags"]["ses:caller-identity"] == ["root"]
        third = send(sesv2, "refuse550@dest.test", cs="no-suppression")
        b = wait_for(lambda: [e for e in events(s, message_id=third) if e["eventType"] == "Bounce"])[0]
        assert b["bounce"]["bounceSubType"] != "OnAccountSuppressionList", "attempted, refused by the receiver"

        # Removing the address lets mail through again (to the receiver).
        sesv2.delete_suppressed_destination(EmailAddress="refuse550@dest.test")
        fourth = send(sesv2, "refuse550@dest.test")
        b = wait_for(lambda: [e for e in events(s, message_id=fourth) if e["eventType"] == "Bounce"])[0]
        assert b["bounce"]["bouncedRecipients"][0]["diagnosticCode"].startswith("smtp; 550")


def _get(sesv2, address):
    try:
        return sesv2.get_suppressed_destination(EmailAddress=address)["SuppressedDestination"]
    except botocore.exceptions.ClientError:
        return None


def test_the_lists_operations(make_server):
    s = make_server(["--dev"])
    sesv2 = s.client("sesv2")
    sesv2.put_suppressed_destination(EmailAddress="A@Example.com", Reason="BOUNCE")
    sesv2.put_suppressed_destination(EmailAddress="b@example.com", Reason="COMPLAINT")
    got = sesv2.get_suppressed_destination(EmailAddress="a@example.com")["SuppressedDestination"]
    assert got["EmailAddress"] == "a@example.com" and got["Reason"] == "BOUNCE"
    listed = sesv2.list_suppressed_destinations()["SuppressedDestinationSummaries"]
    assert [d["EmailAddress"] for d in listed] == ["a@example.com", "b@example.com"]
    only = sesv2.list_suppressed_destinations(Reasons=["COMPLAINT"])["SuppressedDestinationSummaries"]
    assert [d["EmailAddress"] for d in only] == ["b@example.com"]
    page = sesv2.list_suppressed_destinations(PageSize=1)
    assert len(page["SuppressedDestinationSummaries"]) == 1 and page["NextToken"]
    rest = sesv2.list_suppressed_destinations(PageSize=1, NextToken=page["NextToken"])
    assert [d["EmailAddress"] for d in rest["SuppressedDestinationSummaries"]] == ["b@example.com"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.get_suppressed_destination(EmailAddress="nobody@example.com")
    assert err(e)[0] == "NotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.put_suppressed_destination(EmailAddress="not an address", Reason="BOUNCE")
    assert err(e)[0] == "BadRequestException"

    sesv2.put_account_suppression_attributes(SuppressedReasons=["COMPLAINT"])
    assert sesv2.get_account()["SuppressionAttributes"]["SuppressedReasons"] == ["COMPLAINT"]

    # The AWS CLI drives it too.
    s.cli("sesv2", "put-suppressed-destination", "--email-address", "c@example.com", "--reason", "BOUNCE")
    out = json.loads(s.cli("sesv2", "list-suppressed-destinations").stdout)
    assert "c@example.com" in [d["EmailAddress"] for d in out["SuppressedDestinationSummaries"]]
    s.cli("sesv2", "delete-suppressed-destination", "--email-address", "c@example.com")
    with pytest.raises(botocore.exceptions.ClientError):
        sesv2.get_suppressed_destination(EmailAddress="c@example.com")


def test_capture_mode_honours_the_list(make_server):
    """The local mailbox's acceptance hook leaves suppressed recipients to
    the engine, which bounces them: no path skips the list."""
    s = make_server(["--dev", "--auto-verify", "--no-sandbox"])
    sesv2 = s.client("sesv2")
    sesv2.create_email_identity(EmailIdentity="example.com")
    sesv2.put_suppressed_destination(EmailAddress="gone@example.org", Reason="BOUNCE")
    mid = sesv2.send_email(FromEmailAddress="sender@example.com",
                           Destination={"ToAddresses": ["gone@example.org", "here@example.org"]},
                           Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}})["MessageId"]
    got = wait_for(lambda: (lambda es: es if {"Bounce", "Delivery"} <= {e["eventType"] for e in es} else None)(
        events(s, message_id=mid)))
    by = {e["eventType"]: e for e in got}
    assert by["Bounce"]["bounce"]["bounceSubType"] == "OnAccountSuppressionList"
    assert [r["emailAddress"] for r in by["Bounce"]["bounce"]["bouncedRecipients"]] == ["gone@example.org"]
    assert by["Delivery"]["delivery"]["recipients"] == ["here@example.org"]


def test_bulk_import_from_a_csv_file(make_server, tmp_path):
    """`sesame suppression import`: SES's `address,reason` lines, a header
    skipped, a bad line reported by number and the rest imported; away from
    a terminal, plain lines rather than a progress bar."""
    s = make_server(["--dev"])
    f = tmp_path / "suppressed.csv"
    f.write_text("EMAIL_ADDRESS,REASON\nOne@Example.org,BOUNCE\ntwo@example.org,complaint\n"
                 "not-an-address,BOUNCE\nthree@example.org,SPAM\nfour@example.org,BOUNCE\n")
    p = s.sesame("suppression", "import", "--account", "111111111111", "--region", "us-east-1", str(f), check=False)
    assert p.returncode != 0 and "2 lines were refused" in p.stderr
    assert "line 4: not-an-address" in p.stdout and "line 5: three@example.org" in p.stdout
    assert "imported 3 addresses" in p.stdout and "\x1b[" not in p.stdout
    got = s.client("sesv2").list_suppressed_destinations()["SuppressedDestinationSummaries"]
    assert sorted((d["EmailAddress"], d["Reason"]) for d in got) == [
        ("four@example.org", "BOUNCE"), ("one@example.org", "BOUNCE"), ("two@example.org", "COMPLAINT")]
