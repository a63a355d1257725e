"""`sesame audit`: the compliance findings as a table or JSON, its exit
codes, its filters, and the same findings as gauges on /_sesame/metrics."""
import json
import time

import botocore.exceptions
import pytest

ACCOUNT = "111111111111"


def audit(server, *args):
    p = server.sesame("audit", *args, check=False)
    return p.returncode, p.stdout, p.stderr


def wait_metric(server, line, timeout=20):
    deadline = time.time() + timeout
    text = ""
    while time.time() < deadline:
        text = server.metrics()
        if line in text:
            return
        time.sleep(0.2)
    raise AssertionError([l for l in text.splitlines() if "sesame_audit" in l])


def test_audit_finds_unverified_identities_and_refused_senders(make_server):
    s = make_server(["--dev", "--audit-interval", "1s"])
    sesv2 = s.client("sesv2")
    code, out, _ = audit(s)
    assert (code, out.strip()) == (0, "no findings")

    sesv2.create_email_identity(EmailIdentity="pending.example")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.send_email(FromEmailAddress="someone@nowhere.example", Destination={"ToAddresses": ["a@b.example"]},
                         Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}})
    assert e.value.response["Error"]["Code"] == "MessageRejected"

    code, out, err = audit(s, "--format", "json")
    assert code == 1 and "found 2 problem" in err, err
    got = json.loads(out)
    assert got["count"] == 2
    by_kind = {f["kind"]: f for f in got["findings"]}
    pending = by_kind["unverified"]
    assert pending["subject"] == "pending.example" and pending["account"] == ACCOUNT
    assert pending["region"] == "us-east-1" and "Pending" in pending["detail"]
    assert pending["age_seconds"] >= 0
    refused = by_kind["refused-sender"]
    assert refused["subject"] == "someone@nowhere.example"
    assert "Email address is not verified" in refused["detail"]

    code, out, _ = audit(s)
    assert code == 1
    assert out.splitlines()[0].split()[:4] == ["KIND", "ACCOUNT", "REGION", "SUBJECT"]
    assert any(l.startswith("unverified") and "pending.example" in l for l in out.splitlines())

    # Filters: another account or region has nothing to report.
    assert audit(s, "--account", "222222222222")[0] == 0
    assert audit(s, "--region", "eu-west-1")[0] == 0
    code, _, err = audit(s, "--format", "yaml")
    assert code != 0 and "unknown format" in err

    wait_metric(s, f'sesame_audit_findings{{kind="unverified",account="{ACCOUNT}",region="us-east-1"}} 1')


def test_audit_finds_production_identities_whose_feedback_reaches_nobody(make_server):
    """Forwarding off (which SES allows only once topics are set) and the
    topics have nobody listening: a finding until a subscription is
    confirmed."""
    from test_feedback import Endpoint, subscribe

    s = make_server(["--dev", "--no-sandbox", "--auto-verify", "--delivery-allow-private",
                     "--audit-interval", "1s"])
    ses, sesv2, sns = s.client("ses"), s.client("sesv2"), s.client("sns")
    sesv2.create_email_identity(EmailIdentity="example.com")
    assert audit(s)[0] == 0, "forwarding on (SES's default) is a way to hear of bounces"

    arn = sns.create_topic(Name="nobody")["TopicArn"]
    for kind in ("Bounce", "Complaint"):
        ses.set_identity_notification_topic(Identity="example.com", NotificationType=kind, SnsTopic=arn)
    ses.set_identity_feedback_forwarding_enabled(Identity="example.com", ForwardingEnabled=False)
    code, out, _ = audit(s, "--format", "json")
    assert code == 1
    [finding] = json.loads(out)["findings"]
    assert finding["kind"] == "no-feedback" and finding["subject"] == "example.com"
    assert f"bounces reach nobody (topic {arn} is gone or has no confirmed subscription)" in finding["detail"]
    assert "complaints reach nobody" in finding["detail"]
    line = f'sesame_audit_findings{{kind="no-feedback",account="{ACCOUNT}",region="us-east-1"}}'
    wait_metric(s, line + " 1")

    endpoint = Endpoint()
    try:
        _, listened, _ = subscribe(s, endpoint, topic_name="listened")
        ses.set_identity_notification_topic(Identity="example.com", NotificationType="Bounce", SnsTopic=listened)
        _, out, _ = audit(s, "--format", "json")
        detail = json.loads(out)["findings"][0]["detail"]
        assert "complaints reach nobody" in detail and "bounces" not in detail
        ses.set_identity_notification_topic(Identity="example.com", NotificationType="Complaint", SnsTopic=listened)
        assert audit(s)[0] == 0
        wait_metric(s, line + " 0")
    finally:
        endpoint.close()
