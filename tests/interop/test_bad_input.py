"""Bad input gets an error in the request's protocol, changes nothing, and
never takes the server down: random and malformed bodies against every kind
of route, signed so they reach the parsers."""
import json
import random

from helpers import signed

FORM = "application/x-www-form-urlencoded; charset=utf-8"


def test_garbage_everywhere(server):
    rng = random.Random(1234)
    routes = [
        ("POST", "/v2/email/identities"),
        ("POST", "/v2/email/outbound-emails"),
        ("POST", "/v2/email/outbound-bulk-emails"),
        ("POST", "/v2/email/templates"),
        ("PUT", "/v2/email/identities/x.example/dkim/signing"),
        ("POST", "/v2/email/account/details"),
        ("POST", "/v2/email/tags"),
    ]
    bodies = [
        b"", b"{", b"[]", b"null", b'{"EmailIdentity": []}', b'{"Content": {"Raw": {"Data": "!!"}}}',
        b'{"Content": {"Simple": {}}}', b'{"PageSize": -5}', b'{"Tags": [{}]}', "{\"x\": \"\u00e9\"}".encode(),
        b'{"TemplateContent": 3}', b'{"BulkEmailEntries": "no"}', b"\xff\xfe\x00garbage",
    ] + [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) for _ in range(20)]
    for method, path in routes:
        for body in bodies:
            r = signed(server, method, path, body=body, content_type="application/json")
            assert 400 <= r.status < 500, (method, path, body, r.status, r.body[:200])
            err = r.json()
            assert err["__type"] and err["message"], (path, body)
    v1 = [
        "Action=SendEmail&Source=a",
        "Action=SendRawEmail&RawMessage.Data=%%%",
        "Action=SendRawEmail&RawMessage.Data=aGVsbG8=",
        "Action=VerifyDomainIdentity&Domain=",
        "Action=ListIdentities&MaxItems=abc",
        "Action=SetIdentityDkimEnabled&Identity=x.example&DkimEnabled=maybe",
        "Action=GetIdentityVerificationAttributes",
        "Action=SendBulkTemplatedEmail&Source=a@b.c&Template=t&DefaultTemplateData=%7B&Destinations.member.1.Destination.ToAddresses.member.1=x",
        "Action=CreateTemplate&Template.TemplateName=bad%20name",
        "Action=TestRenderTemplate&TemplateName=none&TemplateData=%5B",
    ]
    for body in v1:
        r = signed(server, "POST", "/", body=body.encode(), content_type=FORM)
        assert 400 <= r.status < 500, (body, r.status, r.body[:300])
        assert b"<ErrorResponse" in r.body and b"<Code>" in r.body, body
    for body in (b"[]", b"{", b'{"PageSize": "x"}', b'{"Filter": {"NOPE": "x"}}', b'{"NextToken": "garbage"}'):
        r = signed(server, "POST", "/v2/email/list-identities", body=body, content_type="application/json")
        assert r.status == 400, (body, r.status)
    # Still alive and unchanged.
    r = signed(server, "POST", "/v2/email/list-identities", body=b"{}", content_type="application/json",
               region="me-south-1")
    assert r.status == 200 and json.loads(r.body)["EmailIdentities"] == []
    assert "panicked" not in server.read_log()
