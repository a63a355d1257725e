"""Feedback over Sesame's own SNS, with real clients and a real HTTP
endpoint on loopback: boto3's `sns` client makes a topic and subscribes an
endpoint; the endpoint confirms by fetching SubscribeURL; a configuration
set publishes events to the topic; every notification's signature (version
1 and 2) verifies with the certificate served at SigningCertURL."""
import base64
import http.server
import json
import queue
import threading
import time
import urllib.request

import botocore.exceptions
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from helpers import error as err


class Endpoint:
    """An HTTP endpoint that records every POST (headers and JSON body);
    `down` makes it answer 503."""

    def __init__(self):
        self.received = queue.Queue()
        self.held = []
        self.down = False
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if endpoint.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                endpoint.received.put((dict(self.headers), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hook"

    def next(self, timeout=20):
        return self.received.get(timeout=timeout)

    def until(self, pred, timeout=30):
        """The first message (arrived or arriving) that `pred` accepts.
        Deliveries run concurrently, so their order is not the order of
        their events, as in SNS: messages passed over are kept for later
        calls."""
        for i, (h, m) in enumerate(self.held):
            if pred(m):
                del self.held[i]
                return h, m
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                h, m = self.received.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                break
            if pred(m):
                return h, m
            self.held.append((h, m))
        raise AssertionError(f"no matching notification; saw {[m for _, m in self.held]}")

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def endpoint():
    e = Endpoint()
    yield e
    e.close()


@pytest.fixture
def prod(make_server):
    return make_server(["--dev", "--auto-verify", "--no-sandbox", "--delivery-allow-private"])


SIGNED = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"],
}


def verify(m):
    """Checks a message's signature with the certificate at SigningCertURL."""
    with urllib.request.urlopen(m["SigningCertURL"], timeout=5) as r:
        cert = x509.load_pem_x509_certificate(r.read())
    text = "".join(f"{k}\n{m[k]}\n" for k in SIGNED[m["Type"]] if k in m)
    digest = hashes.SHA1() if m["SignatureVersion"] == "1" else hashes.SHA256()
    cert.public_key().verify(base64.b64decode(m["Signature"]), text.encode(), padding.PKCS1v15(), digest)


def subscribe(server, endpoint, topic_name="ses-events", attributes=None):
    sns = server.client("sns")
    arn = sns.create_topic(Name=topic_name, Attributes=attributes or {})["TopicArn"]
    assert sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=endpoint.url)["SubscriptionArn"] == "pending confirmation"
    headers, confirmation = endpoint.next()
    assert headers["x-amz-sns-message-type"] == "SubscriptionConfirmation"
    assert confirmation["Type"] == "SubscriptionConfirmation" and confirmation["TopicArn"] == arn
    verify(confirmation)
    subs = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert [s["SubscriptionArn"] for s in subs] == ["PendingConfirmation"]
    with urllib.request.urlopen(confirmation["SubscribeURL"], timeout=5) as r:
        assert b"<SubscriptionArn>" in r.read()
    sub = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"][0]["SubscriptionArn"]
    assert sub.startswith(arn + ":")
    return sns, arn, sub


def test_topics_subscriptions_and_signed_publish(prod, endpoint):
    sns, arn, sub = subscribe(prod, endpoint)
    assert sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]["PendingConfirmation"] == "false"
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["SubscriptionsConfirmed"] == "1" and attrs["SignatureVersion"] == "1"

    msg_id = sns.publish(TopicArn=arn, Subject="hello", Message="first")["MessageId"]
    headers, m = endpoint.next()
    assert headers["x-amz-sns-subscription-arn"] == sub
    assert (m["Type"], m["MessageId"], m["Subject"], m["Message"]) == ("Notification", msg_id, "hello", "first")
    assert m["SignatureVersion"] == "1"
    verify(m)

    sns.set_topic_attributes(TopicArn=arn, AttributeName="SignatureVersion", AttributeValue="2")
    sns.publish(TopicArn=arn, Message="second")
    _, m = endpoint.next()
    assert m["SignatureVersion"] == "2" and "Subject" not in m
    verify(m)

    # A tampered message does not verify.
    m["Message"] = "forged"
    with pytest.raises(Exception):
        verify(m)

    # SNS's errors, in SNS's envelope.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.publish(TopicArn=arn + "-missing", Message="x")
    assert err(e)[0] == "NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint="arn:aws:sqs:us-east-1:111111111111:q")
    assert err(e)[0] == "NotImplemented"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.create_topic(Name="bad.name")
    assert err(e)[0] == "InvalidParameter"

    # UnsubscribeURL works: nothing more is delivered.
    sns.publish(TopicArn=arn, Message="third")
    _, m = endpoint.next()
    with urllib.request.urlopen(m["UnsubscribeURL"], timeout=5) as r:
        assert r.status == 200
    assert sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"] == []
    sns.publish(TopicArn=arn, Message="fourth")
    with pytest.raises(queue.Empty):
        endpoint.next(timeout=2)


def test_configuration_set_events_reach_the_topic(prod, endpoint):
    sns, arn, _ = subscribe(prod, endpoint)
    sesv2, ses = prod.client("sesv2"), prod.client("ses")
    sesv2.create_email_identity(EmailIdentity="example.com")
    sesv2.create_configuration_set(ConfigurationSetName="feedback")
    sesv2.create_configuration_set_event_destination(
        ConfigurationSetName="feedback", EventDestinationName="to-sns",
        EventDestination={"Enabled": True, "MatchingEventTypes": ["SEND", "DELIVERY", "BOUNCE", "COMPLAINT"],
                          "SnsDestination": {"TopicArn": arn}})
    _, m = endpoint.next()
    assert m["Message"] == "Successfully validated SNS topic for Amazon SES event publishing."
    got = sesv2.get_configuration_set_event_destinations(ConfigurationSetName="feedback")["EventDestinations"]
    assert got[0]["Name"] == "to-sns" and sorted(got[0]["MatchingEventTypes"]) == ["BOUNCE", "COMPLAINT", "DELIVERY", "SEND"]
    described = ses.describe_configuration_set(ConfigurationSetName="feedback",
                                               ConfigurationSetAttributeNames=["eventDestinations"])
    assert sorted(described["EventDestinations"][0]["MatchingEventTypes"]) == ["bounce", "complaint", "delivery", "send"]

    events = {}
    for to in ["success@simulator.amazonses.com", "bounce@simulator.amazonses.com",
               "complaint@simulator.amazonses.com"]:
        sesv2.send_email(FromEmailAddress="Sender <sender@example.com>", Destination={"ToAddresses": [to]},
                         Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
                         ConfigurationSetName="feedback",
                         EmailTags=[{"Name": "campaign", "Value": "launch"}])
    deadline = time.time() + 30
    while time.time() < deadline:
        _, m = endpoint.next()
        verify(m)
        assert m["Subject"] == "Amazon SES Email Event Notification"
        record = json.loads(m["Message"])
        events.setdefault(record["eventType"], []).append(record)
        if {"Send", "Delivery", "Bounce", "Complaint"} <= set(events) and len(events["Send"]) == 3:
            break
    assert len(events["Send"]) == 3
    bounce = events["Bounce"][0]
    assert bounce["bounce"]["bounceType"] == "Permanent"
    assert bounce["bounce"]["bouncedRecipients"][0]["emailAddress"] == "bounce@simulator.amazonses.com"
    assert events["Complaint"][0]["complaint"]["complainedRecipients"][0]["emailAddress"] == "complaint@simulator.amazonses.com"
    mail = events["Send"][0]["mail"]
    assert mail["tags"]["ses:configuration-set"] == ["feedback"]
    assert mail["tags"]["campaign"] == ["launch"]
    assert mail["tags"]["ses:from-domain"] == ["example.com"]
    assert mail["tags"]["ses:source-ip"] == ["127.0.0.1"]
    assert mail["tags"]["ses:caller-identity"] == ["root"]
    assert mail["commonHeaders"]["from"] == ["Sender <sender@example.com>"]
    headers = {h["name"]: h["value"] for h in mail["headers"]}
    assert headers["Subject"] == "s" and "sender@example.com" in headers["From"]
    assert mail["headersTruncated"] is False
    assert events["Send"][0]["send"] == {}

    # v1 destinations: refusals by name and SES's errors.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.create_configuration_set_event_destination(
            ConfigurationSetName="feedback",
            EventDestination={"Name": "cw", "Enabled": True, "MatchingEventTypes": ["send"],
                              "CloudWatchDestination": {"DimensionConfigurations": [
                                  {"DimensionName": "d", "DimensionValueSource": "emailHeader",
                                   "DefaultDimensionValue": "x"}]}})
    assert err(e)[0] == "NotImplemented" and "CloudWatch dimension source emailHeader" in err(e)[1]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.create_configuration_set_event_destination(
            ConfigurationSetName="feedback",
            EventDestination={"Name": "other", "Enabled": True, "MatchingEventTypes": ["send"],
                              "SNSDestination": {"TopicARN": arn + "-nope"}})
    assert err(e) == ("InvalidSNSDestination", f"SNS topic <{arn}-nope> not found.")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.delete_configuration_set_event_destination(ConfigurationSetName="feedback",
                                                       EventDestinationName="missing")
    assert err(e) == ("EventDestinationDoesNotExist", "No EventDestination found for missing")
    ses.delete_configuration_set_event_destination(ConfigurationSetName="feedback", EventDestinationName="to-sns")
    assert sesv2.get_configuration_set_event_destinations(ConfigurationSetName="feedback")["EventDestinations"] == []


def test_a_notification_waits_for_an_endpoint_that_is_down(prod, endpoint):
    sns, arn, _ = subscribe(prod, endpoint)
    endpoint.down = True
    sns.publish(TopicArn=arn, Message="kept")
    time.sleep(2.5)
    endpoint.down = False
    _, m = endpoint.until(lambda m: m.get("Message") == "kept")
    verify(m)


def test_a_notification_survives_kill_9(make_server, endpoint):
    server = make_server(["--dev", "--auto-verify", "--no-sandbox", "--delivery-allow-private"])
    sns, arn, _ = subscribe(server, endpoint)
    endpoint.down = True
    sns.publish(TopicArn=arn, Message="durable")
    time.sleep(1)
    server.proc.kill()
    server.proc.wait()
    endpoint.down = False
    server.start()
    _, m = endpoint.until(lambda m: m.get("Message") == "durable")
    verify(m)


def test_private_endpoints_are_refused_without_the_flag(make_server, endpoint):
    server = make_server(["--dev"])
    sns = server.client("sns")
    arn = sns.create_topic(Name="t")["TopicArn"]
    sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=endpoint.url)
    with pytest.raises(queue.Empty):
        endpoint.next(timeout=3)
    assert "not public" in server.read_log()


def test_email_subscriptions_confirm_and_deliver(prod):
    """An email subscription gets its confirmation as mail through Sesame's
    own send path (here the --dev mailbox); its link confirms it; then
    notifications arrive as mail, and email-json ones as the signed JSON."""
    import re

    from helpers import mailbox

    sns = prod.client("sns")
    arn = sns.create_topic(Name="by-mail")["TopicArn"]
    sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="ops@example.net")
    sns.subscribe(TopicArn=arn, Protocol="email-json", Endpoint="robot@example.net")

    def mail_to(addr, pred, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for m in mailbox(prod, recipient=addr):
                if pred(m["mime"]):
                    return m["mime"]
            time.sleep(0.2)
        raise AssertionError(f"no matching mail to {addr}: {mailbox(prod, recipient=addr)}")

    for addr in ["ops@example.net", "robot@example.net"]:
        raw = mail_to(addr, lambda r: "SubscribeURL" in r or "/_sesame/sns/confirm" in r)
        link = re.search(r"(http://[^\s\"]+/_sesame/sns/confirm\?[^\s\"]+)", raw.replace("=\r\n", "")).group(1)
        with urllib.request.urlopen(link.replace("\\u0026", "&").replace("=3D", "="), timeout=5) as r:
            assert r.status == 200
    subs = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert all(s["SubscriptionArn"].startswith(arn + ":") for s in subs), subs

    sns.publish(TopicArn=arn, Subject="Disk full", Message="volume /data is at 99%")
    plain = mail_to("ops@example.net", lambda r: "volume /data is at 99%" in r)
    assert "Subject: Disk full" in plain and "/_sesame/sns/unsubscribe" in plain.replace("=\r\n", "")
    as_json = mail_to("robot@example.net", lambda r: '"Type":"Notification"' in r.replace("=\r\n", ""))
    assert '"Message":"volume /data is at 99%"' in as_json.replace("=\r\n", "")


def test_identity_notifications(prod, endpoint):
    """SetIdentityNotificationTopic sends an identity's bounces, complaints
    and deliveries to topics in SES's `notificationType` JSON, governed by
    the most specific verified identity (address over domain)."""
    sns, arn, _ = subscribe(prod, endpoint)
    ses = prod.client("ses")
    ses.verify_domain_identity(Domain="example.com")
    ses.verify_email_identity(EmailAddress="vip@example.com")
    for kind in ["Bounce", "Complaint"]:
        ses.set_identity_notification_topic(Identity="example.com", NotificationType=kind, SnsTopic=arn)
    ses.set_identity_headers_in_notifications_enabled(Identity="example.com", NotificationType="Bounce", Enabled=True)
    ses.set_identity_feedback_forwarding_enabled(Identity="example.com", ForwardingEnabled=False)
    attrs = ses.get_identity_notification_attributes(Identities=["example.com", "vip@example.com"])["NotificationAttributes"]
    assert attrs["example.com"]["BounceTopic"] == arn and attrs["example.com"]["ComplaintTopic"] == arn
    assert "DeliveryTopic" not in attrs["example.com"]
    assert attrs["example.com"]["ForwardingEnabled"] is False
    assert attrs["example.com"]["HeadersInBounceNotificationsEnabled"] is True
    assert attrs["vip@example.com"]["ForwardingEnabled"] is True

    # SES's refusals.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.set_identity_feedback_forwarding_enabled(Identity="vip@example.com", ForwardingEnabled=False)
    assert err(e)[0] == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.set_identity_headers_in_notifications_enabled(Identity="unknown@example.org",
                                                          NotificationType="Bounce", Enabled=True)
    assert err(e) == ("MessageRejected", "Identity unknown@example.org is not verified or does not exist.")

    def send(sender, to):
        return ses.send_email(Source=sender, Destination={"ToAddresses": [to]},
                              Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}})["MessageId"]

    bounced = send("news@example.com", "bounce@simulator.amazonses.com")
    _, m = endpoint.until(lambda m: "notificationType" in m.get("Message", ""))
    verify(m)
    n = json.loads(m["Message"])
    assert n["notificationType"] == "Bounce" and n["mail"]["messageId"] == bounced
    assert n["bounce"]["bouncedRecipients"][0]["emailAddress"] == "bounce@simulator.amazonses.com"
    assert "commonHeaders" in n["mail"] and "tags" not in n["mail"]
    assert "Subject" in [h["name"] for h in n["mail"]["headers"]]
    complained = send("news@example.com", "complaint@simulator.amazonses.com")
    _, m = endpoint.until(lambda m: '"Complaint"' in m.get("Message", ""))
    n = json.loads(m["Message"])
    assert n["notificationType"] == "Complaint" and n["mail"]["messageId"] == complained
    assert "commonHeaders" not in n["mail"] and "headers" not in n["mail"]

    # The address identity has no topics: its bounces are not published to
    # the domain's topic.
    send("vip@example.com", "bounce@simulator.amazonses.com")
    with pytest.raises(queue.Empty):
        endpoint.next(timeout=3)

    # v2 reads the forwarding setting and changes it.
    sesv2 = prod.client("sesv2")
    assert sesv2.get_email_identity(EmailIdentity="example.com")["FeedbackForwardingStatus"] is False
    sesv2.put_email_identity_feedback_attributes(EmailIdentity="example.com", EmailForwardingEnabled=True)
    assert sesv2.get_email_identity(EmailIdentity="example.com")["FeedbackForwardingStatus"] is True


def test_message_insights_come_from_the_recorded_events(prod):
    sesv2 = prod.client("sesv2")
    sesv2.create_email_identity(EmailIdentity="example.com")
    sesv2.create_configuration_set(ConfigurationSetName="ins")
    mid = sesv2.send_email(FromEmailAddress="sender@example.com",
                           Destination={"ToAddresses": ["bounce@simulator.amazonses.com",
                                                        "success@simulator.amazonses.com"]},
                           Content={"Simple": {"Subject": {"Data": "Insight"}, "Body": {"Text": {"Data": "b"}}}},
                           EmailTags=[{"Name": "campaign", "Value": "x"}], ConfigurationSetName="ins")["MessageId"]
    deadline = time.time() + 20
    while time.time() < deadline:
        got = sesv2.get_message_insights(MessageId=mid)
        by = {i["Destination"]: [e["Type"] for e in i["Events"]] for i in got["Insights"]}
        if "BOUNCE" in by.get("bounce@simulator.amazonses.com", []) and "DELIVERY" in by.get(
                "success@simulator.amazonses.com", []):
            break
        time.sleep(0.2)
    assert got["Subject"] == "Insight" and got["EmailTags"] == [{"Name": "campaign", "Value": "x"}]
    assert by["bounce@simulator.amazonses.com"] == ["SEND", "BOUNCE"]
    assert by["success@simulator.amazonses.com"] == ["SEND", "DELIVERY"]
    bounce = [e for i in got["Insights"] for e in i["Events"] if e["Type"] == "BOUNCE"][0]
    assert bounce["Details"]["Bounce"]["BounceType"] == "PERMANENT"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.get_message_insights(MessageId="0000000000000000-00000000-0000-0000-0000-000000000000-000000")
    assert err(e)[0] == "NotFoundException"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_open_and_click_tracking(prod, endpoint):
    """A set whose destination publishes OPEN and CLICK gets its HTML
    rewritten before signing: links go through Sesame and redirect to the
    original, a pixel is added; fetching them raises Open and Click events
    on the topic. A link marked ses:no-track is left alone."""
    import re

    from helpers import mailbox

    sns, arn, _ = subscribe(prod, endpoint)
    sesv2 = prod.client("sesv2")
    sesv2.create_email_identity(EmailIdentity="example.com")
    sesv2.create_configuration_set(ConfigurationSetName="tracked")
    sesv2.create_configuration_set_event_destination(
        ConfigurationSetName="tracked", EventDestinationName="engagement",
        EventDestination={"Enabled": True, "MatchingEventTypes": ["OPEN", "CLICK"],
                          "SnsDestination": {"TopicArn": arn}})
    html = ('<html><body><p>Hi</p><a href="https://example.net/offer?a=1&amp;b=2">Offer</a>'
            '<a ses:no-track href="https://example.net/private">Private</a></body></html>')
    mid = sesv2.send_email(FromEmailAddress="sender@example.com", Destination={"ToAddresses": ["reader@example.org"]},
                           Content={"Simple": {"Subject": {"Data": "Tracked"},
                                               "Body": {"Html": {"Data": html}, "Text": {"Data": "Hi"}}}},
                           ConfigurationSetName="tracked")["MessageId"]
    raw = mailbox(prod, recipient="reader@example.org")[0]["mime"]
    import email
    import email.policy
    msg = email.message_from_string(raw, policy=email.policy.default)
    body = msg.get_body(("html",)).get_content()
    click = re.search(r'href="(http://127\.0\.0\.1:\d+/_sesame/t/c/[^"]+)"', body).group(1)
    pixel = re.search(r'src="(http://127\.0\.0\.1:\d+/_sesame/t/o/[^"]+)"', body).group(1)
    assert 'href="https://example.net/private"' in body
    assert mid in click and mid in pixel

    with urllib.request.urlopen(urllib.request.Request(pixel, headers={"User-Agent": "Reader/1.0"})) as r:
        assert r.headers["Content-Type"] == "image/gif" and r.read()[:6] == b"GIF89a"
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as e:
        opener.open(urllib.request.Request(click, headers={"User-Agent": "Reader/1.0"}))
    assert e.value.code == 302 and e.value.headers["Location"] == "https://example.net/offer?a=1&b=2"

    _, m = endpoint.until(lambda m: '"eventType":"Open"' in m.get("Message", ""))
    opened = json.loads(m["Message"])
    assert opened["open"]["userAgent"] == "Reader/1.0" and opened["open"]["ipAddress"] == "127.0.0.1"
    _, m = endpoint.until(lambda m: '"eventType":"Click"' in m.get("Message", ""))
    clicked = json.loads(m["Message"])
    assert clicked["click"]["link"] == "https://example.net/offer?a=1&b=2"
    assert clicked["mail"]["messageId"] == mid

    # Nothing to track for unknown messages or links; no open redirect.
    for bad in (pixel.replace(mid, "0" * len(mid)), click.rsplit("/", 1)[0] + "/7"):
        with pytest.raises(urllib.error.HTTPError) as e:
            opener.open(bad)
        assert e.value.code == 404

    # The custom redirect domain is where tracked links point.
    sesv2.put_configuration_set_tracking_options(ConfigurationSetName="tracked",
                                                 CustomRedirectDomain="click.example.com", HttpsPolicy="REQUIRE")
    got = sesv2.get_configuration_set(ConfigurationSetName="tracked")["TrackingOptions"]
    assert got == {"CustomRedirectDomain": "click.example.com", "HttpsPolicy": "REQUIRE"}
    sesv2.send_email(FromEmailAddress="sender@example.com", Destination={"ToAddresses": ["second@example.org"]},
                     Content={"Simple": {"Subject": {"Data": "T2"}, "Body": {"Html": {"Data": html}}}},
                     ConfigurationSetName="tracked")
    raw = mailbox(prod, recipient="second@example.org")[0]["mime"]
    body = email.message_from_string(raw, policy=email.policy.default).get_body(("html",)).get_content()
    assert 'href="https://click.example.com/_sesame/t/c/' in body

    # Raw mail too: its HTML part is rewritten in its own transfer encoding.
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText
    m = MIMEMultipart("alternative")
    m["From"], m["To"], m["Subject"] = "sender@example.com", "raw@example.org", "Raw"
    m.attach(MIMEText("Hi", "plain", "utf-8"))
    m.attach(MIMEText(html.replace("Offer", "Offre spéciale"), "html", "utf-8"))
    sesv2.send_email(FromEmailAddress="sender@example.com", Destination={"ToAddresses": ["raw@example.org"]},
                     Content={"Raw": {"Data": m.as_bytes()}}, ConfigurationSetName="tracked")
    raw = mailbox(prod, recipient="raw@example.org")[0]["mime"]
    got = email.message_from_string(raw, policy=email.policy.default)
    body = got.get_body(("html",)).get_content()
    assert "Offre spéciale" in body and 'href="https://example.net/private"' in body
    assert re.search(r'href="https://click\.example\.com/_sesame/t/c/[^"]+/0"', body), body
    assert "/_sesame/t/o/" in body
    assert got.get_body(("plain",)).get_content().strip() == "Hi"


def test_cloudwatch_destinations_are_prometheus_series(prod):
    """A CloudWatch destination counts its events on /_sesame/metrics, with
    the set, SES's metric name and each dimension (a message tag, else its
    default) as labels."""
    sesv2 = prod.client("sesv2")
    sesv2.create_email_identity(EmailIdentity="example.com")
    sesv2.create_configuration_set(ConfigurationSetName="cw")
    sesv2.create_configuration_set_event_destination(
        ConfigurationSetName="cw", EventDestinationName="metrics",
        EventDestination={"Enabled": True, "MatchingEventTypes": ["SEND", "DELIVERY", "BOUNCE"],
                          "CloudWatchDestination": {"DimensionConfigurations": [
                              {"DimensionName": "campaign", "DimensionValueSource": "MESSAGE_TAG",
                               "DefaultDimensionValue": "none"}]}})
    got = sesv2.get_configuration_set_event_destinations(ConfigurationSetName="cw")["EventDestinations"][0]
    assert got["CloudWatchDestination"]["DimensionConfigurations"][0]["DimensionName"] == "campaign"
    for to, tags in [("success@simulator.amazonses.com", [{"Name": "campaign", "Value": "launch"}]),
                     ("bounce@simulator.amazonses.com", [])]:
        sesv2.send_email(FromEmailAddress="sender@example.com", Destination={"ToAddresses": [to]},
                         Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
                         ConfigurationSetName="cw", EmailTags=tags)
    want = [
        f'sesame_ses_events_total{{{ACCOUNT},configuration_set="cw",event_type="Send",dimension_campaign="launch"}} 1',
        f'sesame_ses_events_total{{{ACCOUNT},configuration_set="cw",event_type="Delivery",dimension_campaign="launch"}} 1',
        f'sesame_ses_events_total{{{ACCOUNT},configuration_set="cw",event_type="Bounce",dimension_campaign="none"}} 1',
    ]
    deadline = time.time() + 20
    while time.time() < deadline:
        text = prod.metrics()
        if all(w in text for w in want):
            break
        time.sleep(0.2)
    for w in want:
        assert w in text, [l for l in text.splitlines() if "sesame_ses_events_total" in l]


ACCOUNT = 'account="111111111111",region="us-east-1"'


def test_reputation_vdm_and_archiving_options(prod):
    """ReputationMetricsEnabled keeps the set's bounce and complaint rates
    as series; VDM's engagement metrics track opens and clicks with no
    destination for them; what Sesame cannot do (optimized shared
    delivery, Mail Manager archives) is refused when it is set."""
    import re

    from helpers import mailbox

    sesv2, ses = prod.client("sesv2"), prod.client("ses")
    sesv2.create_email_identity(EmailIdentity="example.com")
    sesv2.create_configuration_set(
        ConfigurationSetName="rep", ReputationOptions={"ReputationMetricsEnabled": True},
        VdmOptions={"DashboardOptions": {"EngagementMetrics": "ENABLED"}})
    got = sesv2.get_configuration_set(ConfigurationSetName="rep")
    assert got["ReputationOptions"]["ReputationMetricsEnabled"] is True
    assert got["VdmOptions"] == {"DashboardOptions": {"EngagementMetrics": "ENABLED"}}
    described = ses.describe_configuration_set(ConfigurationSetName="rep",
                                               ConfigurationSetAttributeNames=["reputationOptions"])
    assert described["ReputationOptions"]["ReputationMetricsEnabled"] is True

    for to in ["success@simulator.amazonses.com", "bounce@simulator.amazonses.com",
               "complaint@simulator.amazonses.com", "success@simulator.amazonses.com"]:
        sesv2.send_email(FromEmailAddress="sender@example.com", Destination={"ToAddresses": [to]},
                         Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
                         ConfigurationSetName="rep")
    labels = f'{ACCOUNT},configuration_set="rep"'
    want = [f'sesame_ses_reputation_bounce_rate{{{labels}}} 0.25',
            f'sesame_ses_reputation_complaint_rate{{{labels}}} 0.25',
            f'sesame_ses_reputation_recipients_total{{{labels},outcome="sent"}} 4']
    deadline = time.time() + 20
    while time.time() < deadline:
        text = prod.metrics()
        if all(w in text for w in want):
            break
        time.sleep(0.2)
    for w in want:
        assert w in text, [l for l in text.splitlines() if "reputation" in l]

    # Engagement metrics: the HTML is tracked though no destination asks.
    html = '<html><body><a href="https://example.net/x">x</a></body></html>'
    sesv2.send_email(FromEmailAddress="sender@example.com", Destination={"ToAddresses": ["eng@example.org"]},
                     Content={"Simple": {"Subject": {"Data": "e"}, "Body": {"Html": {"Data": html}}}},
                     ConfigurationSetName="rep")
    raw = mailbox(prod, recipient="eng@example.org")[0]["mime"]
    assert re.search(r"/_sesame/t/o/", raw) and re.search(r"/_sesame/t/c/", raw)

    ses.update_configuration_set_reputation_metrics_enabled(ConfigurationSetName="rep", Enabled=False)
    assert sesv2.get_configuration_set(ConfigurationSetName="rep")["ReputationOptions"][
        "ReputationMetricsEnabled"] is False
    sesv2.put_configuration_set_vdm_options(ConfigurationSetName="rep", VdmOptions={
        "DashboardOptions": {"EngagementMetrics": "DISABLED"}})
    assert sesv2.get_configuration_set(ConfigurationSetName="rep")["VdmOptions"] == {
        "DashboardOptions": {"EngagementMetrics": "DISABLED"}}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.put_configuration_set_vdm_options(ConfigurationSetName="rep", VdmOptions={
            "GuardianOptions": {"OptimizedSharedDelivery": "ENABLED"}})
    assert err(e)[0] == "NotImplemented" and "OptimizedSharedDelivery" in err(e)[1]
    archive = "arn:aws:ses:us-east-1:111111111111:mailmanager-archive/a-" + "0" * 24
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.put_configuration_set_archiving_options(ConfigurationSetName="rep", ArchiveArn=archive)
    assert err(e)[0] == "NotImplemented" and archive in err(e)[1]
    sesv2.put_configuration_set_archiving_options(ConfigurationSetName="rep")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.put_configuration_set_archiving_options(ConfigurationSetName="missing")
    assert err(e)[0] == "NotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.create_configuration_set(ConfigurationSetName="arch", ArchivingOptions={"ArchiveArn": archive})
    assert err(e)[0] == "NotImplemented"
    with pytest.raises(botocore.exceptions.ClientError):
        sesv2.get_configuration_set(ConfigurationSetName="arch")


def test_topics_declared_in_the_config_file(make_server, endpoint, tmp_path):
    """An operator declares a topic and its subscription in the config
    file: it exists at start, the subscription needs no handshake, and a
    bad declaration stops the server with a message naming it."""
    config = tmp_path / "sesame.toml"
    config.write_text(f"""
[[sns.topics]]
account = "111111111111"
region = "us-east-1"
name = "ops-feedback"
signature_version = 2
subscriptions = [{{ protocol = "http", endpoint = "{endpoint.url}" }}]
""")
    s = make_server(["--dev", "--auto-verify", "--no-sandbox", "--delivery-allow-private", "--config", str(config)])
    sns = s.client("sns")
    arn = "arn:aws:sns:us-east-1:111111111111:ops-feedback"
    assert arn in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    subs = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert len(subs) == 1 and subs[0]["SubscriptionArn"].startswith(arn + ":")
    sns.publish(TopicArn=arn, Message="declared")
    _, m = endpoint.until(lambda m: m.get("Message") == "declared")
    assert m["SignatureVersion"] == "2"
    verify(m)
    # Restarting on the same file changes nothing.
    s.stop()
    s.start()
    assert len(s.client("sns").list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]) == 1

    bad = tmp_path / "bad.toml"
    bad.write_text('[[sns.topics]]\naccount = "111111111111"\nregion = "us-east-1"\nname = "bad.name"\n')
    with pytest.raises(RuntimeError) as e:
        make_server(["--dev", "--config", str(bad)])
    assert "[[sns.topics]] bad.name" in str(e.value)


def test_eventbridge_and_firehose_destinations_mapped_in_the_config_file(make_server, endpoint, tmp_path):
    """An operator maps an EventBridge bus to an HTTP endpoint and a
    Firehose stream to a JSON-lines file; destinations naming them get
    EventBridge's envelope and the event records. Unmapped or another
    account's ARNs are refused when the destination is made."""
    bus = "arn:aws:events:us-east-1:111111111111:event-bus/default"
    stream = "arn:aws:firehose:us-east-1:111111111111:deliverystream/ses-events"
    lines = tmp_path / "events.jsonl"
    config = tmp_path / "sesame.toml"
    config.write_text(f"""
[feedback.eventbridge]
"{bus}" = "{endpoint.url}"

[feedback.firehose]
"{stream}" = "file://{lines}"
""")
    s = make_server(["--dev", "--auto-verify", "--no-sandbox", "--config", str(config)])
    sesv2 = s.client("sesv2")
    sesv2.create_email_identity(EmailIdentity="example.com")
    sesv2.create_configuration_set(ConfigurationSetName="ext")
    sesv2.create_configuration_set_event_destination(
        ConfigurationSetName="ext", EventDestinationName="bus",
        EventDestination={"Enabled": True, "MatchingEventTypes": ["SEND", "BOUNCE"],
                          "EventBridgeDestination": {"EventBusArn": bus}})
    sesv2.create_configuration_set_event_destination(
        ConfigurationSetName="ext", EventDestinationName="stream",
        EventDestination={"Enabled": True, "MatchingEventTypes": ["SEND", "DELIVERY", "BOUNCE"],
                          "KinesisFirehoseDestination": {
                              "IamRoleArn": "arn:aws:iam::111111111111:role/firehose",
                              "DeliveryStreamArn": stream}})
    for name, dest in [("other-bus", {"EventBridgeDestination": {
                           "EventBusArn": "arn:aws:events:us-east-1:111111111111:event-bus/unmapped"}}),
                       ("foreign", {"EventBridgeDestination": {
                           "EventBusArn": "arn:aws:events:us-east-1:999999999999:event-bus/default"}})]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sesv2.create_configuration_set_event_destination(
                ConfigurationSetName="ext", EventDestinationName=name,
                EventDestination={"Enabled": True, "MatchingEventTypes": ["SEND"], **dest})
        assert err(e)[0] == ("NotImplemented" if name == "other-bus" else "BadRequestException"), err(e)

    mid = sesv2.send_email(FromEmailAddress="sender@example.com",
                           Destination={"ToAddresses": ["bounce@simulator.amazonses.com"]},
                           Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
                           ConfigurationSetName="ext")["MessageId"]
    headers, sent = endpoint.until(lambda m: m.get("detail-type") == "Email Sent")
    assert {k.lower(): v for k, v in headers.items()}["content-type"] == "application/json"
    assert sent["source"] == "aws.ses" and sent["account"] == "111111111111" and sent["region"] == "us-east-1"
    assert sent["detail"]["eventType"] == "Send" and sent["detail"]["mail"]["messageId"] == mid
    assert sent["resources"] == ["arn:aws:ses:us-east-1:111111111111:configuration-set/ext"]
    _, bounced = endpoint.until(lambda m: m.get("detail-type") == "Email Bounced")
    assert bounced["detail"]["bounce"]["bounceType"] == "Permanent"

    deadline = time.time() + 20
    records = []
    while time.time() < deadline:
        if lines.exists():
            records = [json.loads(l) for l in lines.read_text().splitlines()]
            if {r["eventType"] for r in records} >= {"Send", "Bounce"}:
                break
        time.sleep(0.1)
    assert {r["eventType"] for r in records} == {"Send", "Bounce"}
    assert all(r["mail"]["messageId"] == mid for r in records)
    got = sesv2.get_configuration_set_event_destinations(ConfigurationSetName="ext")["EventDestinations"]
    assert {d["Name"] for d in got} == {"bus", "stream"}


def test_feedback_forwarding_by_email(prod, endpoint):
    """With forwarding on (SES's default) and no topic, a bounce comes back
    to the sender as a DSN and a complaint as an abuse report (ARF, RFC
    5965), through Sesame's
    own send path; with topics set and forwarding off, nothing is mailed."""
    from helpers import mailbox

    ses = prod.client("ses")
    ses.verify_domain_identity(Domain="example.com")

    def send(to, sender="news@example.com"):
        return ses.send_email(Source=sender, Destination={"ToAddresses": [to]},
                              Message={"Subject": {"Data": "Hello"}, "Body": {"Text": {"Data": "b"}}})["MessageId"]

    def wait_mail(pred, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = [m for m in mailbox(prod, recipient="news@example.com") if pred(m["mime"])]
            if got:
                return got
            time.sleep(0.2)
        return []

    bounced = send("bounce@simulator.amazonses.com")
    dsn = wait_mail(lambda r: "multipart/report" in r)
    assert dsn, "the bounce came back as a DSN"
    raw = dsn[0]["mime"]
    assert "report-type=delivery-status" in raw.replace('"', "")
    assert "Final-Recipient: rfc822; bounce@simulator.amazonses.com" in raw
    assert "From: <MAILER-DAEMON@" in raw
    complained = send("complaint@simulator.amazonses.com")
    arf = wait_mail(lambda r: "feedback-report" in r)
    assert arf, "the complaint came back as an abuse report (ARF)"
    import email
    import email.policy
    report = email.message_from_string(arf[0]["mime"], policy=email.policy.default)
    assert report["Subject"] == "Complaint about your message"
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "feedback-report"
    kinds = [p.get_content_type() for p in report.iter_parts()]
    assert kinds == ["text/plain", "message/feedback-report", "text/rfc822-headers"], kinds
    fields = report.get_payload()[1].as_string()
    assert "Feedback-Type: abuse" in fields and "Version: 1" in fields
    assert "Original-Rcpt-To: <complaint@simulator.amazonses.com>" in fields
    assert "Original-Mail-From: <news@example.com>" in fields
    assert complained in report["In-Reply-To"]

    # Topics for both, forwarding off: nothing more is mailed.
    sns, arn, _ = subscribe(prod, endpoint, topic_name="fb")
    for kind in ("Bounce", "Complaint"):
        ses.set_identity_notification_topic(Identity="example.com", NotificationType=kind, SnsTopic=arn)
    ses.set_identity_feedback_forwarding_enabled(Identity="example.com", ForwardingEnabled=False)
    before = len(mailbox(prod, recipient="news@example.com"))
    send("bounce@simulator.amazonses.com")
    endpoint.until(lambda m: '"notificationType":"Bounce"' in m.get("Message", ""))
    time.sleep(1)
    assert len(mailbox(prod, recipient="news@example.com")) == before
    assert bounced
