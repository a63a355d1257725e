"""The web console at /console: end to end in Debian's headless chromium
(tests/js/console.mjs, through playwright-core), and its security from a
plain HTTP client: sign-in, CSRF tokens, cookies, the Content-Security-
Policy, escaping, and no account seeing another's mail."""
import http.cookiejar
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request

from conftest import ROOT, ROOT_KEY, ROOT_SECRET

OPERATOR = "operator-token-for-tests-0123456789"
ARTIFACTS = os.path.join(ROOT, "target", "console-screenshots")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def console(make_server):
    return make_server(["--delivery", "capture", "--console-operator-token", OPERATOR])


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """A cookie-keeping HTTP client that does not follow redirects."""

    def __init__(self, base):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def request(self, path, form=None):
        """GET, or POST a form (a dict, or a list of pairs for repeated fields)."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            r = self.opener.open(self.base + path, data=data, timeout=10)
            return r.status, dict(r.headers), r.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read().decode(errors="replace")

    def signin_form(self, key, secret):
        """The sign-in form's fields, with the token its page just gave."""
        _, _, page = self.request("/console/signin")
        token = re.search(r'name="csrf" value="([a-z0-9]+)"', page).group(1)
        return {"access_key_id": key, "secret_access_key": secret, "csrf": token}

    def sign_in(self, key=ROOT_KEY, secret=ROOT_SECRET):
        status, headers, _ = self.request("/console/signin", self.signin_form(key, secret))
        assert status == 303, status
        return headers

    def csrf(self):
        _, _, body = self.request("/console/identities")
        return re.search(r'name="csrf" value="([a-z0-9]+)"', body).group(1)


def test_console_end_to_end_in_chromium(make_server):
    s = console(make_server)
    js = os.path.join(ROOT, "tests", "js")
    env = dict(os.environ, SESAME_URL=s.url, AWS_ACCESS_KEY_ID=ROOT_KEY, AWS_SECRET_ACCESS_KEY=ROOT_SECRET,
               SESAME_OPERATOR_TOKEN=OPERATOR, SESAME_ARTIFACTS=ARTIFACTS, CHROMIUM=CHROMIUM)
    p = subprocess.run(["node", "console.mjs"], cwd=js, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr + s.read_log()[-3000:]
    assert "console flow ok" in p.stdout
    shots = os.listdir(ARTIFACTS)
    for page in ["dashboard", "identity", "mail", "message", "operator"]:
        assert f"{page}-1280.png" in shots and f"{page}-375.png" in shots, shots
    # What the browser did, seen through the API.
    sesv2 = s.client("sesv2")
    assert sesv2.get_account()["ProductionAccessEnabled"] is True
    got = sesv2.get_email_identity(EmailIdentity="me@console.example")
    assert got["VerifiedForSendingStatus"] is True


def test_console_security(make_server):
    s = console(make_server)
    b = Browser(s.url)
    status, headers, _ = b.request("/console/identities")
    assert status == 303 and headers["location"] == "/console/signin", "signed out: sent to sign in"
    status, _, body = b.request("/console/signin", b.signin_form(ROOT_KEY, "nope"))
    assert status == 401 and "wrong" in body
    # A sign-in posted from elsewhere (no token from this console's form)
    # signs nobody in.
    other_site = Browser(s.url)
    status, headers, _ = other_site.request("/console/signin", {"access_key_id": ROOT_KEY,
                                                                "secret_access_key": ROOT_SECRET, "csrf": "x" * 32})
    assert status == 403 and "sesame_console=" not in headers.get("set-cookie", "")
    cookie = b.sign_in()["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie

    status, headers, body = b.request("/console")
    assert status == 200
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in body.replace('<script src="/console/static/console.js" defer></script>', "")

    # A form without the session's CSRF token changes nothing.
    status, _, _ = b.request("/console/identities", {"name": "forged.example"})
    assert status == 403
    status, _, _ = b.request("/console/identities", {"name": "forged.example", "csrf": "x" * 32})
    assert status == 403
    sesv2 = s.client("sesv2")
    assert sesv2.list_email_identities()["EmailIdentities"] == []
    status, headers, _ = b.request("/console/identities", {"name": "real.example", "csrf": b.csrf()})
    assert status == 303 and headers["location"] == "/console/identities/real.example"
    assert [i["IdentityName"] for i in sesv2.list_email_identities()["EmailIdentities"]] == ["real.example"]
    status, _, body = b.request("/console/identities", {"name": "not a domain!", "csrf": b.csrf()})
    assert status == 400 and "contains control or whitespace" in body, "SES's message, escaped into the page"

    # Output is escaped: a subject with markup shows as text.
    sesv2.create_email_identity(EmailIdentity="me@real.example")
    s.sesame("identities", "verify", "--account", "111111111111", "--region", "us-east-1", "me@real.example")
    mid = sesv2.send_email(FromEmailAddress="me@real.example", Destination={"ToAddresses": ["me@real.example"]},
                           Content={"Simple": {"Subject": {"Data": "<script>alert(1)</script>"},
                                               "Body": {"Html": {"Data": "<p>hi<script>alert(2)</script></p>"}}}})["MessageId"]
    _, _, body = b.request("/console/mail")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script>alert(1)" not in body
    status, headers, body = b.request(f"/console/mail/{mid}/html")
    assert status == 200 and headers["content-security-policy"].startswith("sandbox")
    assert "default-src 'none'" in headers["content-security-policy"]
    _, _, body = b.request(f"/console/mail/{mid}")
    assert 'iframe class="mail" sandbox ' in body

    # Another account sees none of it, and is no operator.
    out = s.sesame("keys", "create", "--account", "222222222222").stdout
    other_key = re.search(r"aws_access_key_id = (\S+)", out).group(1)
    other_secret = re.search(r"aws_secret_access_key = (\S+)", out).group(1)
    other = Browser(s.url)
    other.sign_in(other_key, other_secret)
    assert other.request(f"/console/mail/{mid}")[0] == 404
    assert other.request(f"/console/mail/{mid}/raw")[0] == 404
    assert "real.example" not in other.request("/console/identities")[2]
    assert other.request("/console/operator")[0] == 403

    # Signing out ends the session.
    status, _, _ = b.request("/console/signout", {"csrf": b.csrf()})
    assert status == 303
    assert b.request("/console")[0] == 303


def test_console_lists_are_edited_where_the_api_allows(make_server):
    s = console(make_server)
    b = Browser(s.url)
    b.sign_in()
    sesv2 = s.client("sesv2")

    def post(path, **form):
        status, headers, body = b.request(path, dict(form, csrf=b.csrf()))
        assert status == 303, body[-500:]
        return headers["location"]

    # A template: created, previewed against sample data, edited, deleted.
    assert post("/console/templates", name="welcome", subject="Hi {{name}}",
                text="Hello {{name}}!") == "/console/templates/welcome"
    _, _, page = b.request("/console/templates/welcome?data=" + urllib.parse.quote('{"name":"Ada"}'))
    assert 'id="rendered-subject">Hi Ada<' in page and "Hello Ada!" in page
    _, _, page = b.request("/console/templates/welcome?data=" + urllib.parse.quote("{not json"))
    assert 'role="alert"' in page
    post("/console/templates/welcome/update", subject="Welcome {{name}}", text="Hello again")
    assert sesv2.get_email_template(TemplateName="welcome")["TemplateContent"]["Subject"] == "Welcome {{name}}"
    post("/console/templates/welcome/delete")
    assert sesv2.list_email_templates()["TemplatesMetadata"] == []

    # A configuration set: created, paused, deleted.
    post("/console/configuration-sets", name="marketing")
    post("/console/configuration-sets/marketing/sending", enabled="false")
    assert sesv2.get_configuration_set(ConfigurationSetName="marketing")["SendingOptions"]["SendingEnabled"] is False
    post("/console/configuration-sets/marketing/delete")
    assert sesv2.list_configuration_sets()["ConfigurationSets"] == []

    # A configuration set's options and event destinations, edited on its page.
    post("/console/configuration-sets", name="tx")
    assert "Configuration set tx" in b.request("/console/configuration-sets/tx")[2]
    post("/console/configuration-sets/tx/options", tls_required="on", max_delivery_seconds="600",
         reputation="on", suppression="set", suppress_bounce="on", redirect_domain="")
    got = sesv2.get_configuration_set(ConfigurationSetName="tx")
    assert got["DeliveryOptions"] == {"TlsPolicy": "REQUIRE", "MaxDeliverySeconds": 600}
    assert got["ReputationOptions"]["ReputationMetricsEnabled"] is True
    assert got["SuppressionOptions"]["SuppressedReasons"] == ["BOUNCE"]
    arn = s.client("sns").create_topic(Name="events")["TopicArn"]
    status, headers, _ = b.request("/console/configuration-sets/tx/destinations", [
        ("csrf", b.csrf()), ("destination", "to-sns"), ("types", "Bounce"), ("types", "Complaint"),
        ("target", "sns"), ("topic_arn", arn)])
    assert status == 303
    [d] = sesv2.get_configuration_set_event_destinations(ConfigurationSetName="tx")["EventDestinations"]
    assert d["Name"] == "to-sns" and sorted(d["MatchingEventTypes"]) == ["BOUNCE", "COMPLAINT"]
    assert d["SnsDestination"]["TopicArn"] == arn
    post("/console/configuration-sets/tx/destinations/to-sns/delete")
    assert sesv2.get_configuration_set_event_destinations(ConfigurationSetName="tx")["EventDestinations"] == []
    status, _, body = b.request("/console/configuration-sets/tx/options",
                                {"csrf": b.csrf(), "max_delivery_seconds": "5"})
    assert status == 400 and "MaxDeliverySeconds" in body
    assert sesv2.get_configuration_set(ConfigurationSetName="tx")["DeliveryOptions"]["MaxDeliverySeconds"] == 600
    post("/console/configuration-sets/tx/delete")

    # A topic's subscriptions: one added (pending its confirmation) and removed.
    post("/console/topics/subscribe", arn=arn, protocol="email", endpoint="ops@example.org")
    _, _, page = b.request("/console/topic?arn=" + urllib.parse.quote(arn))
    assert "ops@example.org" in page and "pending confirmation" in page
    [sub] = s.client("sns").list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    sub_arn = re.search(r'name="subscription" value="([^"]+)"', page).group(1)
    post("/console/topics/unsubscribe", arn=arn, subscription=sub_arn.replace("&#x3D;", "="))
    assert s.client("sns").list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"] == []
    assert sub["Endpoint"] == "ops@example.org"

    # An identity's settings: its default set, topics, forwarding and MAIL FROM.
    sesv2.create_email_identity(EmailIdentity="settings.example")
    post("/console/configuration-sets", name="defaults")
    post("/console/identities/settings.example/settings", configuration_set="defaults", bounce_topic=arn,
         complaint_topic=arn, delivery_topic="", mail_from="bounce.settings.example",
         mail_from_behavior="reject")
    got = sesv2.get_email_identity(EmailIdentity="settings.example")
    assert got["ConfigurationSetName"] == "defaults"
    assert got["FeedbackForwardingStatus"] is False, "the box was left unchecked, and topics now cover feedback"
    assert got["MailFromAttributes"]["MailFromDomain"] == "bounce.settings.example"
    assert got["MailFromAttributes"]["BehaviorOnMxFailure"] == "REJECT_MESSAGE"
    attrs = s.client("ses").get_identity_notification_attributes(Identities=["settings.example"])[
        "NotificationAttributes"]["settings.example"]
    assert attrs["BounceTopic"] == arn and attrs["ComplaintTopic"] == arn and "DeliveryTopic" not in attrs
    page = b.request("/console/identities/settings.example")[2]
    assert '<option value="defaults" selected>' in page
    # SES's rule: forwarding cannot go off without topics; nothing changes then.
    sesv2.create_email_identity(EmailIdentity="bare.example")
    status, _, body = b.request("/console/identities/bare.example/settings", {"csrf": b.csrf()})
    assert status == 400 and 'role="alert"' in body
    assert sesv2.get_email_identity(EmailIdentity="bare.example")["FeedbackForwardingStatus"] is True
    post("/console/identities/settings.example/settings", forwarding="on")
    post("/console/identities/settings.example/delete")
    post("/console/identities/bare.example/delete")
    post("/console/configuration-sets/defaults/delete")

    # The suppression list: an address added and removed.
    post("/console/suppression", address="gone@example.org", reason="BOUNCE")
    got = sesv2.get_suppressed_destination(EmailAddress="gone@example.org")["SuppressedDestination"]
    assert got["Reason"] == "BOUNCE"
    assert "gone@example.org" in b.request("/console/lists")[2]
    post("/console/suppression/delete", address="gone@example.org")
    assert sesv2.list_suppressed_destinations()["SuppressedDestinationSummaries"] == []

    # A topic: created and deleted.
    post("/console/topics", name="feedback")
    sns = s.client("sns")
    [topic] = [t for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":feedback")]
    post("/console/topics/delete", arn=topic["TopicArn"])
    assert [t["TopicArn"] for t in sns.list_topics()["Topics"]] == [arn]

    # A custom verification template, from a verified identity, and deleted.
    sesv2.create_email_identity(EmailIdentity="brand.example")
    s.sesame("identities", "verify", "--account", "111111111111", "--region", "us-east-1", "brand.example")
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    post("/console/custom-verification", name="onboard", **{"from": "hello@brand.example"}, subject="Confirm",
         content=f'<p>Please confirm.</p><img src="data:image/png;base64,{png}" alt="logo">',
         success_url="https://brand.example/ok", failure_url="https://brand.example/no")
    # Its preview shows the embedded image, in the sandboxed frame only.
    assert '<iframe class="mail" sandbox' in b.request("/console/custom-verification/onboard")[2]
    status, headers, body = b.request("/console/custom-verification/onboard/preview")
    assert status == 200 and headers["content-security-policy"].startswith("sandbox")
    assert f"data:image/png;base64,{png}" in body
    [cv] = sesv2.list_custom_verification_email_templates()["CustomVerificationEmailTemplates"]
    assert cv["TemplateName"] == "onboard" and cv["FromEmailAddress"] == "hello@brand.example"
    post("/console/custom-verification/onboard/update", **{"from": "hello@brand.example"}, subject="Confirm now",
         content="<p>Please confirm.</p>", success_url="https://brand.example/ok",
         failure_url="https://brand.example/no")
    assert sesv2.get_custom_verification_email_template(TemplateName="onboard")["TemplateSubject"] == "Confirm now"
    assert "Confirm now" in b.request("/console/custom-verification/onboard")[2]
    post("/console/custom-verification/onboard/delete")
    assert sesv2.list_custom_verification_email_templates()["CustomVerificationEmailTemplates"] == []

    # SES's refusal, shown: a bad name changes nothing.
    status, _, body = b.request("/console/configuration-sets", {"name": "bad name!", "csrf": b.csrf()})
    assert status == 400 and 'role="alert"' in body
    assert sesv2.list_configuration_sets()["ConfigurationSets"] == []
