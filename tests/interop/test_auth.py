"""SigV4 as real clients sign it, and every refusal with AWS's code."""
import urllib.request

import botocore.exceptions
import pytest

from helpers import form, presigned_url, send, signed

FORM = "application/x-www-form-urlencoded; charset=utf-8"


def xml_code(r):
    import re

    return re.search(r"<Code>([^<]+)</Code>", r.text).group(1)


def test_missing_authentication_v1_and_v2(server):
    r = send(server, "POST", "/", form("ListIdentities"), {"Content-Type": FORM})
    assert r.status == 403
    assert xml_code(r) == "MissingAuthenticationToken"
    assert "<RequestId>" in r.text and "<Type>Sender</Type>" in r.text
    r = send(server, "GET", "/v2/email/account")
    assert r.status == 403
    assert r.headers["x-amzn-ErrorType"] == "MissingAuthenticationToken"


def test_unknown_key_is_invalid_client_token(server):
    ses = server.client("ses", key="AKIAUNKNOWN000000000", secret="x" * 40)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.list_identities()
    assert e.value.response["Error"]["Code"] == "InvalidClientTokenId"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_wrong_secret_is_signature_mismatch(server):
    sesv2 = server.client("sesv2", secret="wrong-secret")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.list_email_identities()
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_tampered_body_is_refused(server):
    body = form("VerifyEmailIdentity", EmailAddress="a@example.com")

    def swap(headers):
        pass

    headers_body = form("VerifyEmailIdentity", EmailAddress="b@example.com")
    from helpers import sign

    h = sign(server, "POST", "/", body, FORM)
    r = send(server, "POST", "/", headers_body, h)
    assert r.status == 403 and xml_code(r) == "SignatureDoesNotMatch"


def test_skewed_clock_is_request_expired(server):
    def skew(h):
        h["X-Amz-Date"] = "20200101T000000Z"

    r = signed(server, "POST", "/", form("ListIdentities"), FORM, tamper=skew)
    assert r.status == 400
    assert xml_code(r) == "RequestExpired"
    assert "Signature expired: 20200101T000000Z is now earlier than" in r.text


def test_incomplete_signature(server):
    def cut(h):
        h["Authorization"] = h["Authorization"].split(", Signature=")[0]

    r = signed(server, "GET", "/v2/email/account", tamper=cut)
    assert r.status == 400
    assert r.headers["x-amzn-ErrorType"] == "IncompleteSignature"
    assert "requires 'Signature' parameter" in r.json()["message"]


def test_wrong_service_in_scope(server):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from conftest import ROOT_KEY, ROOT_SECRET

    req = AWSRequest(method="GET", url=server.url + "/v2/email/account")
    SigV4Auth(Credentials(ROOT_KEY, ROOT_SECRET), "s3", "us-east-1").add_auth(req)
    r = send(server, "GET", "/v2/email/account", b"", dict(req.headers.items()))
    assert r.status == 403
    assert r.json()["__type"] == "SignatureDoesNotMatch"
    assert "correct service: 'ses'" in r.json()["message"]


def test_presigned_query_from_botocore(server):
    server.client("sesv2").create_email_identity(EmailIdentity="presigned@example.com")
    url = presigned_url(server, "GET", "/v2/email/identities/presigned%40example.com")
    with urllib.request.urlopen(url) as r:
        assert r.status == 200
        assert b'"EMAIL_ADDRESS"' in r.read()
    bad = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    bad = bad[: bad.index("X-Amz-Signature=") + 16 + 64]
    try:
        urllib.request.urlopen(bad)
        raise AssertionError("a tampered presigned URL was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 403


def test_old_get_list_route_still_works(server):
    sesv2 = server.client("sesv2", region="ca-central-1")
    sesv2.create_email_identity(EmailIdentity="oldroute.example")
    r = signed(server, "GET", "/v2/email/identities", region="ca-central-1", query="PageSize=10")
    assert r.status == 200
    assert [i["IdentityName"] for i in r.json()["EmailIdentities"]] == ["oldroute.example"]


def test_unknown_action_and_route(server):
    r = signed(server, "POST", "/", form("NoSuchAction"), FORM)
    assert r.status == 400 and xml_code(r) == "InvalidAction"
    r = signed(server, "POST", "/", b"Version=2010-12-01", FORM)
    assert r.status == 400 and xml_code(r) == "MissingAction"
    r = signed(server, "GET", "/v2/email/no-such-thing")
    assert r.status == 404
    assert r.json()["__type"] == "UnknownOperationException"


def test_body_limits(server):
    """A body over SES's limit (10 MB v1, 40 MB v2) is refused before it is read."""
    import socket

    for path, limit, ctype in (("/", 10 * 1024 * 1024, FORM), ("/v2/email/identities", 40 * 1024 * 1024, "application/json")):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {limit + 1}\r\n\r\n".encode()
            )
            reply = b""
            while b"\r\n\r\n" not in reply or len(reply) < 200:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 413"), reply[:100]
        assert b"RequestEntityTooLarge" in reply
    # Under the limit, an unsigned request is refused from its headers,
    # before a byte of its body is read (none is sent here).
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            f"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\n"
            f"Content-Length: {1024 * 1024}\r\n\r\n".encode()
        )
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 403") and b"MissingAuthenticationToken" in reply, reply[:200]
    # A signed one just under the limit is read and judged on its merits.
    body = b"Action=ListIdentities&Version=2010-12-01&Pad=" + b"x" * (1024 * 1024)
    r = signed(server, "POST", "/", body, FORM)
    assert r.status == 200, r.text


def test_keys_belong_to_accounts(server):
    out = server.sesame("keys", "create", "--account", "222233334444").stdout
    lines = dict(l.split(" = ") for l in out.splitlines() if " = " in l)
    other = server.client("sesv2", key=lines["aws_access_key_id"], secret=lines["aws_secret_access_key"])
    other.create_email_identity(EmailIdentity="mine@accounts.example")
    root = server.client("sesv2")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        root.get_email_identity(EmailIdentity="mine@accounts.example")
    assert e.value.response["Error"]["Code"] == "NotFoundException"
    assert other.get_email_identity(EmailIdentity="mine@accounts.example")["IdentityType"] == "EMAIL_ADDRESS"
    # The key's account shows in the ARN it may tag.
    other.tag_resource(
        ResourceArn="arn:aws:ses:us-east-1:222233334444:identity/mine@accounts.example",
        Tags=[{"Key": "k", "Value": "v"}],
    )


def test_dev_mode_accepts_any_credentials(make_server):
    s = make_server(["--dev"])
    ses = s.client("ses", key="test", secret="test")
    ses.verify_email_identity(EmailAddress="dev@example.com")
    # A 12-digit key ID is its own account.
    acct = s.client("ses", key="123456789012", secret="whatever")
    assert acct.list_identities()["Identities"] == []
    assert ses.list_identities()["Identities"] == ["dev@example.com"]
    # Known keys still have to sign correctly in dev mode.
    bad_root = s.client("ses", secret="not-the-root-secret")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad_root.list_identities()
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    # The log never shows the secret.
    assert "root-secret-for-tests-only" not in s.read_log()
