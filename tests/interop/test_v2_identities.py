"""SESv2 (REST-JSON) identity operations through boto3's `sesv2` client."""
import base64

import botocore.exceptions
import pytest
import rsa  # python-rsa, installed with awscli


def code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def status(excinfo):
    return excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_create_and_get_email_identity(sesv2, unique):
    addr = f"v2-{unique}@example.com"
    r = sesv2.create_email_identity(EmailIdentity=addr)
    assert r["IdentityType"] == "EMAIL_ADDRESS"
    assert r["VerifiedForSendingStatus"] is False
    got = sesv2.get_email_identity(EmailIdentity=addr)
    got.pop("ResponseMetadata")
    assert got == {
        "IdentityType": "EMAIL_ADDRESS",
        "FeedbackForwardingStatus": True,
        "VerifiedForSendingStatus": False,
        "DkimAttributes": {
            "SigningEnabled": False,
            "Status": "NOT_STARTED",
            "SigningAttributesOrigin": "AWS_SES",
            "NextSigningKeyLength": "RSA_1024_BIT",
        },
        "MailFromAttributes": {"BehaviorOnMxFailure": "USE_DEFAULT_VALUE"},
        "Policies": {},
        "Tags": [],
        "VerificationStatus": "PENDING",
        "VerificationInfo": {},
    }


def test_create_existing_is_already_exists(sesv2, unique):
    domain = f"dup-{unique}.example.com"
    sesv2.create_email_identity(EmailIdentity=domain)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.create_email_identity(EmailIdentity=domain)
    assert code(e) == "AlreadyExistsException"
    assert e.value.response["Error"]["Message"] == f"Email identity {domain} already exist."
    assert status(e) == 400


def test_domain_gets_easy_dkim(sesv2, unique):
    domain = f"easy-{unique}.example.com"
    r = sesv2.create_email_identity(EmailIdentity=domain, Tags=[{"Key": "team", "Value": "mail"}])
    dkim = r["DkimAttributes"]
    assert r["IdentityType"] == "DOMAIN"
    assert dkim["SigningEnabled"] is True
    assert dkim["Status"] == "PENDING"
    assert dkim["SigningAttributesOrigin"] == "AWS_SES"
    assert dkim["CurrentSigningKeyLength"] == "RSA_2048_BIT"
    assert len(dkim["Tokens"]) == 3
    assert dkim["LastKeyGenerationTimestamp"].year >= 2024  # an epoch-seconds timestamp
    got = sesv2.get_email_identity(EmailIdentity=domain.upper())
    assert got["Tags"] == [{"Key": "team", "Value": "mail"}]
    assert got["DkimAttributes"]["Tokens"] == dkim["Tokens"]


def test_key_length_and_byodkim(sesv2, unique):
    domain = f"byo-{unique}.example.com"
    r = sesv2.create_email_identity(
        EmailIdentity=domain, DkimSigningAttributes={"NextSigningKeyLength": "RSA_1024_BIT"}
    )
    assert r["DkimAttributes"]["CurrentSigningKeyLength"] == "RSA_1024_BIT"

    _, private = rsa.newkeys(1024)
    key = base64.b64encode(private.save_pkcs1(format="DER")).decode()
    r = sesv2.put_email_identity_dkim_signing_attributes(
        EmailIdentity=domain,
        SigningAttributesOrigin="EXTERNAL",
        SigningAttributes={"DomainSigningSelector": "sel1", "DomainSigningPrivateKey": key},
    )
    assert r["DkimStatus"] == "PENDING"
    assert r["DkimTokens"] == []
    got = sesv2.get_email_identity(EmailIdentity=domain)["DkimAttributes"]
    assert got["SigningAttributesOrigin"] == "EXTERNAL"

    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.put_email_identity_dkim_signing_attributes(
            EmailIdentity=domain,
            SigningAttributesOrigin="EXTERNAL",
            SigningAttributes={"DomainSigningSelector": "sel2", "DomainSigningPrivateKey": "aGVsbG8="},
        )
    assert code(e) == "BadRequestException"
    # A refused change leaves the identity as it was.
    assert sesv2.get_email_identity(EmailIdentity=domain)["DkimAttributes"]["SigningAttributesOrigin"] == "EXTERNAL"

    r = sesv2.put_email_identity_dkim_signing_attributes(EmailIdentity=domain, SigningAttributesOrigin="AWS_SES")
    assert len(r["DkimTokens"]) == 3


def test_create_with_byodkim_validates_key(sesv2, unique):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.create_email_identity(
            EmailIdentity=f"badkey-{unique}.example.com",
            DkimSigningAttributes={"DomainSigningSelector": "s", "DomainSigningPrivateKey": "AAAA"},
        )
    assert code(e) == "BadRequestException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.get_email_identity(EmailIdentity=f"badkey-{unique}.example.com")
    assert code(e) == "NotFoundException"


def test_put_dkim_attributes(sesv2, unique):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.put_email_identity_dkim_attributes(EmailIdentity=f"none-{unique}.example", SigningEnabled=True)
    assert code(e) == "BadRequestException"
    assert e.value.response["Error"]["Message"] == f"Domain none-{unique}.example is not verified for DKIM signing."
    domain = f"toggle-{unique}.example"
    sesv2.create_email_identity(EmailIdentity=domain)
    sesv2.put_email_identity_dkim_attributes(EmailIdentity=domain, SigningEnabled=False)
    assert sesv2.get_email_identity(EmailIdentity=domain)["DkimAttributes"]["SigningEnabled"] is False


def test_not_found_is_404(sesv2):
    for call in (
        lambda: sesv2.get_email_identity(EmailIdentity="nobody@nowhere.example"),
        lambda: sesv2.delete_email_identity(EmailIdentity="nobody@nowhere.example"),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert code(e) == "NotFoundException"
        assert status(e) == 404


def test_plus_and_at_in_path_labels(sesv2, unique):
    addr = f"user+label-{unique}@example.com"
    sesv2.create_email_identity(EmailIdentity=addr)
    assert sesv2.get_email_identity(EmailIdentity=addr)["IdentityType"] == "EMAIL_ADDRESS"
    sesv2.delete_email_identity(EmailIdentity=addr)
    with pytest.raises(botocore.exceptions.ClientError):
        sesv2.get_email_identity(EmailIdentity=addr)


def test_list_email_identities_filters_and_pages(server):
    sesv2 = server.client("sesv2", region="sa-east-1")
    for i in range(3):
        sesv2.create_email_identity(EmailIdentity=f"l{i}@list.example")
    sesv2.create_email_identity(EmailIdentity="list.example")
    seen, token = [], None
    while True:
        kw = {"PageSize": 2}
        if token:
            kw["NextToken"] = token
        r = sesv2.list_email_identities(**kw)
        seen += [i["IdentityName"] for i in r["EmailIdentities"]]
        token = r.get("NextToken")
        if not token:
            break
    assert seen == ["l0@list.example", "l1@list.example", "l2@list.example", "list.example"]
    items = sesv2.list_email_identities()["EmailIdentities"]
    assert items[-1] == {
        "IdentityType": "DOMAIN",
        "IdentityName": "list.example",
        "SendingEnabled": False,
        "VerificationStatus": "PENDING",
    }


def test_tags(sesv2, unique):
    domain = f"tags-{unique}.example"
    sesv2.create_email_identity(EmailIdentity=domain)
    arn = f"arn:aws:ses:us-east-1:111111111111:identity/{domain}"
    sesv2.tag_resource(ResourceArn=arn, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    sesv2.untag_resource(ResourceArn=arn, TagKeys=["a"])
    assert sesv2.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.tag_resource(ResourceArn=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    assert code(e) == "BadRequestException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.list_tags_for_resource(ResourceArn=f"arn:aws:ses:us-east-1:222222222222:identity/{domain}")
    assert code(e) == "NotFoundException"


def test_unimplemented_operation_names_itself(sesv2):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.get_dedicated_ips()
    assert code(e) == "NotImplemented"
    assert "GetDedicatedIps" in e.value.response["Error"]["Message"]


def test_missing_required_member_is_bad_request(server):
    # boto3 validates required members itself, so send this one raw.
    from helpers import signed

    r = signed(server, "POST", "/v2/email/identities", body=b"{}", content_type="application/json")
    assert r.status == 400
    assert r.headers["x-amzn-ErrorType"] == "BadRequestException"
    assert "Value null at 'emailIdentity'" in r.json()["message"]
    r = signed(server, "POST", "/v2/email/identities", body=b"{not json", content_type="application/json")
    assert r.status == 400
    assert r.json()["__type"] == "BadRequestException"
