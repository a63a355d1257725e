"""Custom verification email templates: v1 and v2 CRUD with SES's rules
(verified From address, the HTML allow-list, 50 per account), and
SendCustomVerificationEmail end to end: production access required, the
email carries the template, the link and SES's disclaimer, and the click
redirects to the template's URL."""
import email
import email.policy
import http.client
import re
import urllib.parse

import botocore.exceptions
import pytest

from helpers import error, mailbox

ACCOUNT = ["--account", "111111111111", "--region", "us-east-1"]
CONTENT = "<html><body><h1 class=\"t\">Welcome to Example</h1><p>Please confirm your address.</p></body></html>"


def template(name, **over):
    t = dict(TemplateName=name, FromEmailAddress="hello@brand.example", TemplateSubject="Confirm your address",
             TemplateContent=CONTENT, SuccessRedirectionURL="https://brand.example/ok",
             FailureRedirectionURL="https://brand.example/failed")
    t.update(over)
    return t


@pytest.fixture
def dev(make_server):
    s = make_server(["--dev"])
    ses, sesv2 = s.client("ses"), s.client("sesv2")
    sesv2.create_email_identity(EmailIdentity="brand.example")
    s.sesame("identities", "verify", *ACCOUNT, "brand.example")
    return s, ses, sesv2


def test_crud_in_both_apis(dev):
    s, ses, sesv2 = dev
    ses.create_custom_verification_email_template(**template("v1-made"))
    sesv2.create_custom_verification_email_template(**template("v2-made", TemplateSubject="Hi"))
    got = sesv2.get_custom_verification_email_template(TemplateName="v1-made")
    assert got["TemplateContent"] == CONTENT and got["SuccessRedirectionURL"] == "https://brand.example/ok"
    got = ses.get_custom_verification_email_template(TemplateName="v2-made")
    assert got["TemplateSubject"] == "Hi" and got["FromEmailAddress"] == "hello@brand.example"

    listed = ses.list_custom_verification_email_templates()["CustomVerificationEmailTemplates"]
    assert [t["TemplateName"] for t in listed] == ["v1-made", "v2-made"]
    assert "TemplateContent" not in listed[0]
    page = sesv2.list_custom_verification_email_templates(PageSize=1)
    assert [t["TemplateName"] for t in page["CustomVerificationEmailTemplates"]] == ["v1-made"]
    rest = sesv2.list_custom_verification_email_templates(PageSize=1, NextToken=page["NextToken"])
    assert [t["TemplateName"] for t in rest["CustomVerificationEmailTemplates"]] == ["v2-made"]

    ses.update_custom_verification_email_template(TemplateName="v1-made", TemplateSubject="New subject")
    got = sesv2.get_custom_verification_email_template(TemplateName="v1-made")
    assert got["TemplateSubject"] == "New subject" and got["TemplateContent"] == CONTENT

    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.create_custom_verification_email_template(**template("v1-made"))
    assert error(e) == ("CustomVerificationEmailTemplateAlreadyExists",
                        "Custom verification email template <v1-made> already exists")
    with pytest.raises(sesv2.exceptions.AlreadyExistsException):
        sesv2.create_custom_verification_email_template(**template("v1-made"))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.get_custom_verification_email_template(TemplateName="nope")
    assert error(e) == ("CustomVerificationEmailTemplateDoesNotExist",
                        "Custom verification email template <nope> does not exist")
    with pytest.raises(sesv2.exceptions.NotFoundException):
        sesv2.get_custom_verification_email_template(TemplateName="nope")

    sesv2.delete_custom_verification_email_template(TemplateName="v2-made")
    with pytest.raises(sesv2.exceptions.NotFoundException):
        sesv2.delete_custom_verification_email_template(TemplateName="v2-made")
    ses.delete_custom_verification_email_template(TemplateName="v2-made")  # v1: no error
    # The AWS CLI reads the same list.
    out = s.cli("sesv2", "list-custom-verification-email-templates").stdout
    assert '"TemplateName": "v1-made"' in out and "v2-made" not in out


@pytest.mark.parametrize("content,why", [
    ("<p>hi</p><script>alert(1)</script>", "<script>"),
    ("<p>hi<!-- a comment --></p>", "comments"),
    ("<p onclick=\"steal()\">hi</p>", "onclick"),
    ("<a href=\"https://x.example\">link</a>", "<a>"),
    ("<iframe src=\"https://x.example\"></iframe>", "<iframe>"),
    ("<img src=\"data:image/svg+xml;base64,PHN2Zy8+\">", "image/svg+xml"),
    ("<img src=\"data:image/png;base64,@@not base64@@\">", "does not decode"),
    ("<img src=\"data:image/png,plain\">", "must be base64"),
])
def test_html_outside_the_allow_list_is_refused(dev, content, why):
    _, ses, sesv2 = dev
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.create_custom_verification_email_template(**template("bad", TemplateContent=content))
    code, message = error(e)
    assert code == "CustomVerificationEmailInvalidContent" and why in message, message
    with pytest.raises(sesv2.exceptions.BadRequestException):
        sesv2.create_custom_verification_email_template(**template("bad", TemplateContent=content))
    # Nothing was stored, and an update with bad content changes nothing.
    assert ses.list_custom_verification_email_templates()["CustomVerificationEmailTemplates"] == []
    ses.create_custom_verification_email_template(**template("good"))
    with pytest.raises(botocore.exceptions.ClientError):
        ses.update_custom_verification_email_template(TemplateName="good", TemplateContent=content)
    assert ses.get_custom_verification_email_template(TemplateName="good")["TemplateContent"] == CONTENT


def test_from_address_must_be_verified_and_fifty_at_most(dev):
    _, ses, sesv2 = dev
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.create_custom_verification_email_template(**template("t", FromEmailAddress="me@unverified.example"))
    assert error(e) == ("FromEmailAddressNotVerified", "The from email address <me@unverified.example> is not verified")
    with pytest.raises(sesv2.exceptions.NotFoundException):
        sesv2.create_custom_verification_email_template(**template("t", FromEmailAddress="me@unverified.example"))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.create_custom_verification_email_template(**template("t", FromEmailAddress="Brand <hello@brand.example>"))
    assert error(e)[0] == "InvalidParameterValue" and "display name" in error(e)[1]
    for n in range(50):
        ses.create_custom_verification_email_template(**template(f"t{n}"))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.create_custom_verification_email_template(**template("t50"))
    assert error(e)[0] == "LimitExceeded"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.list_custom_verification_email_templates(MaxResults=51)
    assert error(e)[0] == "ValidationError"


def test_send_needs_production_access_then_verifies_and_redirects(dev):
    s, ses, sesv2 = dev
    ses.create_custom_verification_email_template(**template("welcome"))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.send_custom_verification_email(EmailAddress="new.user@customer.example", TemplateName="welcome")
    assert error(e)[0] == "ProductionAccessNotGranted"
    with pytest.raises(sesv2.exceptions.BadRequestException):
        sesv2.send_custom_verification_email(EmailAddress="new.user@customer.example", TemplateName="welcome")
    assert ses.list_identities()["Identities"] == ["brand.example"], "a refused send creates nothing"

    s.sesame("accounts", "approve", *ACCOUNT)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.send_custom_verification_email(EmailAddress="new.user@customer.example", TemplateName="missing")
    assert error(e)[0] == "CustomVerificationEmailTemplateDoesNotExist"
    mid = sesv2.send_custom_verification_email(EmailAddress="new.user@customer.example",
                                               TemplateName="welcome")["MessageId"]
    assert mid
    attrs = ses.get_identity_verification_attributes(Identities=["new.user@customer.example"])
    assert attrs["VerificationAttributes"]["new.user@customer.example"]["VerificationStatus"] == "Pending"

    [m] = [m for m in mailbox(s, recipient="new.user@customer.example") if m["operation"] == "SendCustomVerificationEmail"]
    msg = email.message_from_string(m["mime"], policy=email.policy.default)
    assert msg["From"] == "hello@brand.example" and msg["Subject"] == "Confirm your address"
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert "<h1 class=\"t\">Welcome to Example</h1>" in html
    assert "If you did not request to verify this email address, please disregard this message." in html
    link = re.search(r'href="(http://[^"]+/_sesame/verify/[A-Za-z0-9_-]+)"', html).group(1)

    def click():
        u = urllib.parse.urlparse(link)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        conn.request("GET", u.path)
        r = conn.getresponse()
        conn.close()
        return r.status, r.getheader("Location")

    assert click() == (302, "https://brand.example/ok")
    # The link works once: clicked again it is invalid, and leads to the failure URL.
    assert click() == (302, "https://brand.example/failed")
    attrs = ses.get_identity_verification_attributes(Identities=["new.user@customer.example"])
    assert attrs["VerificationAttributes"]["new.user@customer.example"]["VerificationStatus"] == "Success"


# A 1×1 transparent PNG.
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


def test_embedded_images_become_inline_parts(dev):
    """SES's guide: a `data:` image in the template's HTML is sent as an
    attachment. It arrives as an inline part the HTML points at by cid:."""
    import base64

    s, ses, sesv2 = dev
    content = (f'<html><body><p>Hello</p><img src="data:image/png;base64,{PNG}" alt="logo">'
               f'<img src="data:image/png;base64,{PNG}" alt="again"></body></html>')
    ses.create_custom_verification_email_template(**template("pictured", TemplateContent=content))
    s.sesame("accounts", "approve", *ACCOUNT)
    sesv2.send_custom_verification_email(EmailAddress="pic@customer.example", TemplateName="pictured")
    [m] = [m for m in mailbox(s, recipient="pic@customer.example")
           if m["operation"] == "SendCustomVerificationEmail"]
    msg = email.message_from_string(m["mime"], policy=email.policy.default)
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert "data:" not in html
    cids = re.findall(r'src="cid:([^"]+)"', html)
    assert len(cids) == 2 and cids[0] == cids[1], "one part for the one image used twice"
    images = [p for p in msg.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1
    assert images[0]["Content-ID"].strip("<>") == cids[0]
    assert images[0].get_content() == base64.b64decode(PNG)
    assert images[0].get_content_disposition() == "inline"
