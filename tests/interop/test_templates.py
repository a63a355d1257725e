"""Templates and templated sends (v1 and v2), rendered with Handlebars as
SES renders them."""
import json
import urllib.request

import botocore.exceptions
import pytest

from conftest import ROOT_ACCOUNT
from helpers import mailbox
from test_sending import verify


@pytest.fixture
def dev(make_server):
    s = make_server(["--dev"])
    verify(s, "us-east-1", "example.com")
    s.sesame("accounts", "set-quota", "--account", ROOT_ACCOUNT, "--region", "us-east-1", "--max-send-rate", "1000")
    return s


ORDER = {
    "TemplateName": "order",
    "SubjectPart": "Order for {{name}}",
    "TextPart": "{{#each items}}- {{this.title}} x{{this.qty}}\n{{/each}}{{#if vip}}Thanks, VIP!{{else}}Thanks!{{/if}}",
    "HtmlPart": "<h1>{{name}}</h1><p>{{address.city}}</p>",
}
DATA = json.dumps({"name": "Ann", "items": [{"title": "Tea", "qty": 2}, {"title": "Cup", "qty": 1}],
                   "vip": True, "address": {"city": "Oslo"}})


def test_v1_template_lifecycle_and_render(dev):
    ses = dev.client("ses")
    ses.create_template(Template=ORDER)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.create_template(Template=ORDER)
    assert e.value.response["Error"]["Code"] == "AlreadyExists"
    assert ses.get_template(TemplateName="order")["Template"] == ORDER
    meta = ses.list_templates()["TemplatesMetadata"]
    assert [m["Name"] for m in meta] == ["order"] and meta[0]["CreatedTimestamp"].year >= 2024
    rendered = ses.test_render_template(TemplateName="order", TemplateData=DATA)["RenderedTemplate"]
    assert "Subject: Order for Ann" in rendered
    assert "- Tea x2" in rendered and "Thanks, VIP!" in rendered and "<h1>Ann</h1><p>Oslo</p>" in rendered
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.test_render_template(TemplateName="order", TemplateData='{"items": []}')
    assert (e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]) == (
        "MissingRenderingAttribute", "Attribute 'name' is not present in the rendering data.")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.get_template(TemplateName="missing")
    assert (e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]) == (
        "TemplateDoesNotExist", "Template missing does not exist.")
    ses.update_template(Template={**ORDER, "SubjectPart": "Updated {{name}}"})
    assert ses.get_template(TemplateName="order")["Template"]["SubjectPart"] == "Updated {{name}}"
    ses.delete_template(TemplateName="order")
    ses.delete_template(TemplateName="order")  # v1 delete of a missing template succeeds
    assert ses.list_templates()["TemplatesMetadata"] == []


def test_v1_templated_sends(dev):
    ses = dev.client("ses")
    ses.create_template(Template=ORDER)
    mid = ses.send_templated_email(Source="shop@example.com", Destination={"ToAddresses": ["ann@example.com"]},
                                   Template="order", TemplateData=DATA)["MessageId"]
    [m] = mailbox(dev, recipient="ann@example.com")
    assert m["id"] == mid and m["subject"] == "Order for Ann"
    # Missing data: accepted now, reported as a rendering failure, nothing delivered.
    mid = ses.send_templated_email(Source="shop@example.com", Destination={"ToAddresses": ["bob@example.com"]},
                                   Template="order", TemplateData="{}")["MessageId"]
    assert mid and mailbox(dev, recipient="bob@example.com") == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.send_templated_email(Source="shop@example.com", Destination={"ToAddresses": ["b@example.com"]},
                                 Template="nope", TemplateData="{}")
    assert e.value.response["Error"]["Code"] == "TemplateDoesNotExist"

    r = ses.send_bulk_templated_email(
        Source="shop@example.com", Template="order", DefaultTemplateData=DATA,
        Destinations=[
            {"Destination": {"ToAddresses": ["c1@example.com"]}, "ReplacementTemplateData": '{"name": "Cy"}'},
            {"Destination": {"ToAddresses": ["stranger@gmail.com"]}},
            {"Destination": {"ToAddresses": ["c3@example.com"]}},
        ],
    )["Status"]
    assert [s["Status"] for s in r] == ["Success", "MessageRejected", "Success"]
    assert "stranger@gmail.com" in r[1]["Error"]
    assert mailbox(dev, recipient="c1@example.com")[0]["subject"] == "Order for Cy"
    assert mailbox(dev, recipient="c3@example.com")[0]["subject"] == "Order for Ann"


def test_v2_templates_and_sends(dev):
    sesv2 = dev.client("sesv2")
    sesv2.create_email_template(TemplateName="welcome", TemplateContent={"Subject": "Hi {{name}}", "Text": "Hello {{name}}"},
                                Tags=[{"Key": "k", "Value": "v"}])
    got = sesv2.get_email_template(TemplateName="welcome")
    assert got["TemplateContent"] == {"Subject": "Hi {{name}}", "Text": "Hello {{name}}"}
    assert got["Tags"] == [{"Key": "k", "Value": "v"}]
    assert [t["TemplateName"] for t in sesv2.list_email_templates()["TemplatesMetadata"]] == ["welcome"]
    out = sesv2.test_render_email_template(TemplateName="welcome", TemplateData='{"name": "Zoë"}')["RenderedTemplate"]
    assert "Hello Zo" in out
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.get_email_template(TemplateName="nope")
    assert e.value.response["Error"]["Code"] == "NotFoundException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    r = sesv2.send_email(FromEmailAddress="a@example.com", Destination={"ToAddresses": ["t1@example.com"]},
                         Content={"Template": {"TemplateName": "welcome", "TemplateData": '{"name": "T1"}'}})
    assert mailbox(dev, recipient="t1@example.com")[0]["id"] == r["MessageId"]
    sesv2.send_email(FromEmailAddress="a@example.com", Destination={"ToAddresses": ["t2@example.com"]},
                     Content={"Template": {"TemplateContent": {"Subject": "Inline {{x}}", "Html": "<b>{{x}}</b>"},
                                           "TemplateData": '{"x": "y"}'}})
    assert mailbox(dev, recipient="t2@example.com")[0]["subject"] == "Inline y"

    r = sesv2.send_bulk_email(
        FromEmailAddress="a@example.com",
        DefaultContent={"Template": {"TemplateName": "welcome", "TemplateData": '{"name": "Default"}'}},
        BulkEmailEntries=[
            {"Destination": {"ToAddresses": ["b1@example.com"]},
             "ReplacementEmailContent": {"ReplacementTemplate": {"ReplacementTemplateData": '{"name": "B1"}'}}},
            {"Destination": {"ToAddresses": ["not verified <x@gmail.com>"]}},
        ],
    )["BulkEmailEntryResults"]
    assert [e["Status"] for e in r] == ["SUCCESS", "MESSAGE_REJECTED"]
    assert mailbox(dev, recipient="b1@example.com")[0]["subject"] == "Hi B1"

    sesv2.update_email_template(TemplateName="welcome", TemplateContent={"Subject": "New"})
    assert sesv2.get_email_template(TemplateName="welcome")["TemplateContent"] == {"Subject": "New"}
    sesv2.delete_email_template(TemplateName="welcome")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.delete_email_template(TemplateName="welcome")
    assert e.value.response["Error"]["Code"] == "NotFoundException"
