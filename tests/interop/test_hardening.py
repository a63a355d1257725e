"""Hostile callers, driven against the real binary over loopback: none can
crash the server, stall its API, act with another request's signature,
make Sesame spam, or reach inside the network through direct delivery.
Each test is a reproduction of a way in that a probe once found."""
import hashlib
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

import botocore.exceptions
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ROOT_KEY, ROOT_SECRET
from helpers import error, form, mailbox, send, sign, signed
from peers import Dns, Sink

FORM = "application/x-www-form-urlencoded; charset=utf-8"
ACCOUNT = ["--account", "111111111111", "--region", "us-east-1"]


def alive(server):
    """The server answers a signed call, and its process is running."""
    assert server.proc.poll() is None, server.read_log()[-2000:]
    server.client("ses").get_send_quota()


def health(server):
    try:
        with urllib.request.urlopen(server.url + "/_sesame/health", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def nested(n):
    return "{{#if a}}" * n + "x" + "{{/if}}" * n


# 1. Templates cannot abort the process.

def test_deeply_nested_templates_are_refused_and_render_nothing_unbounded(server, unique):
    ses = server.client("ses")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.create_template(Template={"TemplateName": f"deep-{unique}", "SubjectPart": "s", "TextPart": nested(2000)})
    code, message = error(e)
    assert code == "InvalidTemplate" and "100 levels" in message, message
    # The same through v2, and through an update of a good template.
    sesv2 = server.client("sesv2")
    with pytest.raises(sesv2.exceptions.BadRequestException):
        sesv2.create_email_template(TemplateName=f"deep2-{unique}",
                                    TemplateContent={"Subject": "s", "Text": nested(2000)})
    ses.create_template(Template={"TemplateName": f"ok-{unique}", "SubjectPart": "s", "TextPart": nested(100)})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.update_template(Template={"TemplateName": f"ok-{unique}", "SubjectPart": "s", "HtmlPart": nested(101)})
    assert error(e)[0] == "InvalidTemplate"
    # 100 levels render.
    out = ses.test_render_template(TemplateName=f"ok-{unique}", TemplateData='{"a": true}')["RenderedTemplate"]
    assert "x" in out
    # Subexpressions and literals count as levels too, and a partial that
    # could call itself is refused.
    for text in ["{{x " + "(y " * 2000 + "}}", "{{x " + "[" * 2000 + "}}",
                 '{{#*inline "r"}}{{> r}}{{/inline}}{{> r}}']:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ses.create_template(Template={"TemplateName": f"sub-{unique}", "SubjectPart": "s", "TextPart": text})
        assert error(e)[0] == "InvalidTemplate"
    alive(server)


def test_rendering_is_bounded_in_output_and_loops(server, unique):
    ses = server.client("ses")
    # Nested loops over 8,000 values: refused before they run.
    ses.create_template(Template={"TemplateName": f"loops-{unique}", "SubjectPart": "s",
                                  "TextPart": "{{#each a}}{{#each ../a}}x{{/each}}{{/each}}"})
    data = json.dumps({"a": list(range(8000))})
    started = time.monotonic()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.test_render_template(TemplateName=f"loops-{unique}", TemplateData=data)
    code, message = error(e)
    assert code == "InvalidRenderingParameter" and "10000000" in message, message
    assert time.monotonic() - started < 5
    # A loop whose output passes 10 MiB stops there.
    ses.create_template(Template={"TemplateName": f"big-{unique}", "SubjectPart": "s",
                                  "TextPart": "{{#each a}}{{../b}}{{/each}}"})
    data = json.dumps({"a": list(range(60)), "b": "y" * 200_000})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.test_render_template(TemplateName=f"big-{unique}", TemplateData=data)
    code, message = error(e)
    assert code == "InvalidRenderingParameter" and "10485760" in message, message
    # A send with it is a rendering failure: accepted, nothing stored.
    ses.verify_email_identity(EmailAddress=f"me-{unique}@example.com")
    server.sesame("identities", "verify", *ACCOUNT, f"me-{unique}@example.com")
    mid = ses.send_templated_email(Source=f"me-{unique}@example.com",
                                   Destination={"ToAddresses": ["success@simulator.amazonses.com"]},
                                   Template=f"big-{unique}", TemplateData=data)["MessageId"]
    assert mid
    alive(server)


# 2. Unauthenticated or slow connections cannot stop the API.

def stall(port, payload, source="127.0.0.1"):
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(payload)
    return s


def test_stalled_connections_do_not_stop_the_api(make_server):
    server = make_server()
    held = []
    try:
        for i in range(50):
            kind = i % 3
            if kind == 0:  # headers that never end
                payload = b"POST /v2/email/identities HTTP/1.1\r\nHost: x\r\n"
            elif kind == 1:  # a huge declared body, never sent
                payload = (b"POST /v2/email/identities HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 41943040\r\n\r\n")
            else:  # chunked, one byte
                payload = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: " + FORM.encode() +
                           b"\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nA\r\n")
            held.append(stall(server.port, payload))
        started = time.monotonic()
        server.client("sesv2").list_email_identities()
        server.client("ses").list_identities()
        assert time.monotonic() - started < 2, "signed calls answer while 50 stalled connections are held"
        assert health(server)[0] == 200
    finally:
        for s in held:
            s.close()


def test_headers_and_bodies_have_deadlines(make_server):
    server = make_server(["--header-timeout", "1s", "--body-timeout", "1s"])
    # Headers that never end: the connection is closed.
    s = stall(server.port, b"POST / HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    got = s.recv(4096)
    assert time.monotonic() - started < 5 and (got == b"" or got.startswith(b"HTTP/1.1 408")), got
    s.close()
    # An idle kept-alive connection is closed too.
    s = stall(server.port, b"")
    assert s.recv(4096) == b""
    s.close()
    # A signed request whose body stalls is answered RequestTimeout, and it
    # gives its room in the request budget back.
    body = form("ListIdentities")
    headers = sign(server, "POST", "/", body, FORM)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() != "content-length")
    s = stall(server.port, f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n{head}"
                           f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:5])
    reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400") and b"RequestTimeout" in reply, reply
    s.close()
    alive(server)


def quiet(server):
    """Waits (at most 5 s) until no connection but the asking one is open:
    the start-up probe's connection from 127.0.0.1 may still hold its slot
    for a moment after the probe has its answer. Asked from 127.0.0.2, so
    that asking takes no slot from 127.0.0.1."""
    deadline = time.time() + 5
    while time.time() < deadline:
        s = stall(server.port, b"GET /_sesame/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                  source="127.0.0.2")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        s.close()
        if json.loads(data.split(b"\r\n\r\n", 1)[1]).get("connections") == 1:
            return
        time.sleep(0.02)
    raise AssertionError("connections stayed open after start-up")


def test_connections_are_limited_per_peer_and_in_all(make_server):
    server = make_server(["--max-connections-per-peer", "4", "--max-connections", "6"])
    quiet(server)
    idle = [stall(server.port, b"") for _ in range(4)]
    try:
        fifth = stall(server.port, b"GET /_sesame/health HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            got = fifth.recv(4096)
        except ConnectionResetError:
            got = b""
        assert got == b"", "a fifth connection from one peer is closed at once"
        fifth.close()
        # Another peer still gets in, up to the limit in all.
        other = stall(server.port, b"GET /_sesame/health HTTP/1.1\r\nHost: x\r\n\r\n", source="127.0.0.2")
        assert other.recv(4096).startswith(b"HTTP/1.1 200")
        other.close()
    finally:
        for s in idle:
            s.close()
    time.sleep(0.2)
    alive(server)


def test_health_says_when_the_request_budget_is_full(make_server):
    server = make_server(["--request-memory", "1"])
    # A signed request declaring a large body holds the whole budget while
    # it sends it slowly.
    body = form("ListIdentities", Pad="x" * (2 * 1024 * 1024))
    headers = sign(server, "POST", "/", body, FORM)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() != "content-length")
    s = stall(server.port, f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n{head}"
                           f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:100])
    try:
        deadline = time.time() + 5
        while time.time() < deadline and health(server)[0] == 200:
            time.sleep(0.05)
        status, doc = health(server)
        assert status == 503 and "the request memory budget is full" in doc["problems"], doc
        s.sendall(body[100:])
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        s.close()
    assert health(server)[0] == 200


# 3. The signature binds the body.

def test_a_signature_does_not_carry_over_to_another_body(make_server, unique):
    server = make_server(["--no-sandbox"])
    ses = server.client("ses")
    ses.verify_domain_identity(Domain=f"bound-{unique}.example")
    server.sesame("identities", "verify", *ACCOUNT, f"bound-{unique}.example")
    original = form("ListIdentities")
    headers = sign(server, "POST", "/", original, FORM)
    evil = form("SendEmail", Source=f"a@bound-{unique}.example", **{
        "Destination.ToAddresses.member.1": "victim@outside.example",
        "Message.Subject.Data": "hi", "Message.Body.Text.Data": "spam"})
    for sha in (hashlib.sha256(original).hexdigest(), "UNSIGNED-PAYLOAD", None):
        h = dict(headers)
        if sha:
            h["X-Amz-Content-SHA256"] = sha
        h.pop("Content-Length", None)
        r = send(server, "POST", "/", evil, h)
        assert r.status == 403 and b"SignatureDoesNotMatch" in r.body, (sha, r.text)
    # UNSIGNED-PAYLOAD, signed as such, is refused too.
    req = AWSRequest(method="POST", url=server.url + "/", data=original,
                     headers={"Content-Type": FORM, "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    SigV4Auth(Credentials(ROOT_KEY, ROOT_SECRET), "ses", "us-east-1").add_auth(req)
    r = send(server, "POST", "/", original, dict(req.headers.items()))
    assert r.status == 403 and b"UNSIGNED-PAYLOAD" in r.body
    # The honest request still works, with or without the header.
    assert send(server, "POST", "/", original, headers).status == 200
    h = dict(headers, **{"X-Amz-Content-SHA256": hashlib.sha256(original).hexdigest()})
    assert signed(server, "POST", "/", original, FORM).status == 200
    assert send(server, "POST", "/", original, h).status == 200
    assert ses.get_send_statistics()["SendDataPoints"] == [], "nothing was sent"


# 4. Sesame cannot be made to spam.

def no_retries(server, service, region="us-east-1"):
    """A client that gives up at the first answer (botocore retries
    throttling once even with max_attempts 1)."""
    import boto3
    import botocore.config

    return boto3.client(service, region_name=region, endpoint_url=server.url, aws_access_key_id=ROOT_KEY,
                        aws_secret_access_key=ROOT_SECRET,
                        config=botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}))


def test_api_calls_are_rate_limited_per_account_and_region(make_server, unique):
    server = make_server(["--no-sandbox"], env={"SESAME_API_RATE": "1"})
    ses, sesv2 = no_retries(server, "ses"), no_retries(server, "sesv2")
    ses.verify_domain_identity(Domain=f"rate-{unique}.example")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.list_identities()
    assert error(e) == ("Throttling", "Rate exceeded")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(sesv2.exceptions.TooManyRequestsException) as e:
        sesv2.list_email_identities()
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    # Another region has its own rate.
    no_retries(server, "ses", region="eu-west-1").list_identities()
    # Sends are not counted: their limit is the sending rate.
    server.sesame("identities", "verify", *ACCOUNT, f"rate-{unique}.example")
    for _ in range(3):
        sesv2.send_email(FromEmailAddress=f"me@rate-{unique}.example",
                         Destination={"ToAddresses": ["success@simulator.amazonses.com"]},
                         Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}})
    time.sleep(1.05)
    ses.list_identities()


def test_verification_emails_are_paced_per_address(make_server, unique):
    server = make_server(["--dev"], env={"SESAME_VERIFICATION_EMAIL_INTERVAL": "60s"})
    ses, sesv2 = server.client("ses"), server.client("sesv2")
    victim = f"victim-{unique}@example.com"
    ses.verify_email_identity(EmailAddress=victim)
    for call in (lambda: ses.verify_email_identity(EmailAddress=victim),
                 lambda: server.client("ses", region="eu-west-1").verify_email_identity(EmailAddress=victim)):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        code, message = error(e)
        assert code == "Throttling" and "less than 60 seconds ago" in message, message
    with pytest.raises(sesv2.exceptions.TooManyRequestsException):
        sesv2.create_email_identity(EmailIdentity=victim.upper())
    assert server.client("ses", region="eu-west-1").list_identities()["Identities"] == [], \
        "a refused call creates nothing"
    ses.verify_email_identity(EmailAddress=f"other-{unique}@example.com")
    got = mailbox(server, system=True, recipient=victim)
    assert len(got) == 1, got


def test_custom_verification_emails_count_against_the_quota(make_server, unique):
    server = make_server(["--dev"])
    ses = server.client("ses")
    ses.verify_domain_identity(Domain="brand.example")
    server.sesame("identities", "verify", *ACCOUNT, "brand.example")
    server.sesame("accounts", "approve", *ACCOUNT)
    server.sesame("accounts", "set-quota", *ACCOUNT, "--max-24h-send", "2", "--max-send-rate", "100")
    ses.create_custom_verification_email_template(
        TemplateName="prize", FromEmailAddress="hello@brand.example", TemplateSubject="You won a prize",
        TemplateContent="<p>hi</p>", SuccessRedirectionURL="https://brand.example/ok",
        FailureRedirectionURL="https://brand.example/no")
    for i in range(2):
        ses.send_custom_verification_email(EmailAddress=f"u{i}-{unique}@example.com", TemplateName="prize")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.send_custom_verification_email(EmailAddress=f"u9-{unique}@example.com", TemplateName="prize")
    assert error(e) == ("Throttling", "Daily message quota exceeded")
    assert ses.get_send_quota()["SentLast24Hours"] == 2


def test_unknown_regions_are_refused(make_server):
    server = make_server(["--dev"])
    for region in ("zz-spam-1", "us-east-9"):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            server.client("ses", region=region).verify_email_identity(EmailAddress="x@example.com")
        code, message = error(e)
        assert code == "SignatureDoesNotMatch" and f"not '{region}'" in message, message
    assert mailbox(server, system=True) == []
    # The operator may name the regions served.
    other = make_server(["--dev", "--regions", "us-east-1,zz-lab-1"])
    other.client("ses", region="zz-lab-1").list_identities()
    with pytest.raises(botocore.exceptions.ClientError):
        other.client("ses", region="eu-west-1").list_identities()


# 5. Amplification is bounded before any work is done.

def test_huge_and_gapped_lists_are_refused_at_once(server, unique):
    base = {"Action": "SendBulkTemplatedEmail", "Version": "2010-12-01", "Source": "a@example.com",
            "Template": "t", "DefaultTemplateData": "{}"}
    parts = [urllib.parse.urlencode(base)]
    parts += [f"Destinations.member.{i}.Destination.ToAddresses.member.1=x{i}%40example.com"
              for i in range(1, 100_001)]
    body = "&".join(parts).encode()
    started = time.monotonic()
    r = signed(server, "POST", "/", body, FORM)
    assert r.status == 400 and b"at most 1000" in r.body, r.text[:300]
    assert time.monotonic() - started < 5
    # A gap, or an index out of range, is refused instead of guessed.
    for tail in ("member.1=a%40example.com&Destination.ToAddresses.member.3=c%40example.com",
                 "member.100000=a%40example.com&Destination.ToAddresses.member.4294967296=b%40example.com"):
        body = form("SendEmail", Source="a@example.com", **{"Message.Subject.Data": "s",
                                                              "Message.Body.Text.Data": "b"})
        body += b"&Destination.ToAddresses." + tail.encode()
        r = signed(server, "POST", "/", body, FORM)
        assert r.status == 400 and b"InvalidParameterValue" in r.body, r.text


def test_bytes_that_are_not_utf8_are_refused(server, make_server):
    body = b"Action=VerifyEmailIdentity&Version=2010-12-01&EmailAddress=a%FF%FE%FD%40dev.example"
    r = signed(server, "POST", "/", body, FORM)
    assert r.status == 400 and b"InvalidParameterValue" in r.body and b"UTF-8" in r.body, r.text
    assert not any("dev.example" in i for i in server.client("ses").list_identities()["Identities"])
    # In a v2 query string (in --dev, where the signature is not checked,
    # so the decoder is what refuses it).
    dev = make_server(["--dev"])
    r = signed(dev, "GET", "/v2/email/templates", query="NextToken=%FF", key="AKIAANYDEVKEY0000001")
    assert r.status == 400 and r.json()["__type"] == "BadRequestException", r.text


# 6. Direct delivery is no tool for reaching inside the network.

def test_direct_delivery_refuses_literals_and_reserved_addresses(make_server, unique):
    with Sink() as sink, Dns() as dns:
        dns.mx(f"inside-{unique}.test", f"mail.inside-{unique}.test")
        dns.a(f"mail.inside-{unique}.test", "127.0.0.1")
        dns.a("localhost", "127.0.0.1")
        s = make_server(["--dev", "--auto-verify", "--no-sandbox", "--delivery", "direct",
                         "--dns-server", dns.address, "--smtp-port", str(sink.port)])
        sesv2 = s.client("sesv2")
        sesv2.create_email_identity(EmailIdentity=f"from-{unique}.example")
        for to in (f"a@inside-{unique}.test", "a@localhost", "a@[127.0.0.1]"):
            sesv2.send_email(FromEmailAddress=f"me@from-{unique}.example", Destination={"ToAddresses": [to]},
                             Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}})
        deadline = time.time() + 20
        while time.time() < deadline:
            with urllib.request.urlopen(s.url + "/_sesame/events?type=Bounce") as r:
                bounces = json.loads(r.read())["events"]
            if len(bounces) >= 3:
                break
            time.sleep(0.1)
        got = {b["bounce"]["bouncedRecipients"][0]["emailAddress"]: b["bounce"]["bouncedRecipients"][0]
               for b in bounces}
        assert got[f"a@inside-{unique}.test"]["status"] == "5.4.4"
        assert "resolves only to reserved addresses (127.0.0.1)" in got[f"a@inside-{unique}.test"]["diagnosticCode"]
        assert got["a@localhost"]["status"] == "5.4.4"
        assert got["a@[127.0.0.1]"]["status"] == "5.1.2"
        assert "address literal" in got["a@[127.0.0.1]"]["diagnosticCode"]
        assert all(b["bounce"]["bounceType"] == "Permanent" for b in bounces)
        assert sink.received == [], "nothing reached the loopback server"
        # The operator's explicit allowance lets it through (as the tests do).
        allowed = make_server(["--dev", "--auto-verify", "--no-sandbox", "--delivery", "direct",
                               "--delivery-allow-private", "--dns-server", dns.address,
                               "--smtp-port", str(sink.port)])
        v2 = allowed.client("sesv2")
        v2.create_email_identity(EmailIdentity=f"from-{unique}.example")
        v2.send_email(FromEmailAddress=f"me@from-{unique}.example",
                      Destination={"ToAddresses": [f"b@inside-{unique}.test", "c@[127.0.0.1]"]},
                      Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}})
        assert sorted(r for m in sink.wait_for(2) for r in m.rcpts) == sorted([f"b@inside-{unique}.test", "c@[127.0.0.1]"])


# Metrics are the operator's.

def test_metrics_need_a_token_or_their_own_listener(make_server):
    plain = make_server(env={"SESAME_METRICS_TOKEN": None})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(plain.url + "/_sesame/metrics")
    assert e.value.code == 404 and b"--metrics-listen" in e.value.read()
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(
            plain.url + "/_sesame/metrics", headers={"Authorization": "Bearer nope"}))
    tokened = make_server()
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(tokened.url + "/_sesame/metrics")
    assert e.value.code == 401
    assert "sesame_" in tokened.metrics()
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    addr = port.getsockname()
    port.close()
    separate = make_server(["--metrics-listen", f"127.0.0.1:{addr[1]}"], env={"SESAME_METRICS_TOKEN": None})
    with urllib.request.urlopen(f"http://127.0.0.1:{addr[1]}/_sesame/metrics") as r:
        assert r.status == 200 and b"sesame_" in r.read()
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(separate.url + "/_sesame/metrics")
    assert e.value.code == 404
