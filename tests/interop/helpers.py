"""Raw HTTP requests signed by botocore's own SigV4 signer, for the cases
the SDK clients will not send (bad signatures, skewed clocks, old routes)."""
import http.client
import json
import urllib.parse
import urllib.request

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ROOT_KEY, ROOT_SECRET


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    @property
    def text(self):
        return self.body.decode()


class Headers(dict):
    """Case-insensitive lookups over response headers."""

    def __getitem__(self, k):
        for key, v in self.items():
            if key.lower() == k.lower():
                return v
        raise KeyError(k)


def send(server, method, path, body=b"", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    out = Response(r.status, Headers(r.getheaders()), r.read())
    conn.close()
    return out


def sign(server, method, path, body=b"", content_type=None, region="us-east-1", key=ROOT_KEY, secret=ROOT_SECRET, query=""):
    """Returns the headers botocore would send for this request."""
    url = server.url + path + (("?" + query) if query else "")
    headers = {"Content-Type": content_type} if content_type else {}
    req = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(Credentials(key, secret), "ses", region).add_auth(req)
    return dict(req.headers.items())


def signed(server, method, path, body=b"", content_type=None, region="us-east-1", key=ROOT_KEY, secret=ROOT_SECRET, query="", tamper=None):
    headers = sign(server, method, path, body, content_type, region, key, secret, query)
    if tamper:
        tamper(headers)
    full = path + (("?" + query) if query else "")
    return send(server, method, full, body, headers)


def presigned_url(server, method, path, region="us-east-1", expires=60, key=ROOT_KEY, secret=ROOT_SECRET):
    req = AWSRequest(method=method, url=server.url + path)
    SigV4QueryAuth(Credentials(key, secret), "ses", region, expires=expires).add_auth(req)
    return req.url


def form(action, **params):
    return urllib.parse.urlencode({"Action": action, "Version": "2010-12-01", **params}).encode()


def mailbox(server, system=False, **query):
    """The `--dev` mailbox's messages, newest first. Verification emails
    (system mail) are left out unless `system` asks for them alone."""
    qs = urllib.parse.urlencode(query)
    with urllib.request.urlopen(f"{server.url}/_sesame/messages?{qs}") as r:
        msgs = json.loads(r.read())["messages"]
    return [m for m in msgs if (m["operation"] == "VerificationEmail") == system]


def error(excinfo):
    """(code, message) of a botocore ClientError."""
    e = excinfo.value.response["Error"]
    return e["Code"], e["Message"]
