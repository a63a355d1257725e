"""SES v1 (Query/XML) identity operations through boto3's `ses` client."""
import botocore.exceptions
import pytest


def code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def message(excinfo):
    return excinfo.value.response["Error"]["Message"]


def test_verify_email_identity_is_pending_and_idempotent(ses, unique):
    addr = f"me-{unique}@example.com"
    r = ses.verify_email_identity(EmailAddress=addr)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    ses.verify_email_identity(EmailAddress=addr)
    attrs = ses.get_identity_verification_attributes(Identities=[addr])["VerificationAttributes"]
    assert attrs == {addr: {"VerificationStatus": "Pending"}}


def test_verify_email_address_deprecated_pair(ses, unique):
    addr = f"old-{unique}@example.com"
    ses.verify_email_address(EmailAddress=addr)
    assert addr in ses.list_identities(IdentityType="EmailAddress", MaxItems=1000)["Identities"]
    # Only verified addresses are listed here.
    assert addr not in ses.list_verified_email_addresses()["VerifiedEmailAddresses"]
    ses.delete_verified_email_address(EmailAddress=addr)
    assert addr not in ses.list_identities()["Identities"]


def test_invalid_address_gets_ses_error(ses):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.verify_email_identity(EmailAddress="<STUB>")
    assert code(e) == "InvalidParameterValue"
    assert message(e) == "Invalid email address<STUB>."
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.verify_domain_identity(Domain="exa mple.com")
    assert message(e) == "Domain contains control or whitespace"


def test_verify_domain_identity_token(ses, unique):
    domain = f"{unique}.example.com"
    token = ses.verify_domain_identity(Domain=domain.upper())["VerificationToken"]
    assert len(token) == 44
    assert ses.verify_domain_identity(Domain=domain)["VerificationToken"] == token
    attrs = ses.get_identity_verification_attributes(Identities=[domain, "unknown.invalid"])
    assert attrs["VerificationAttributes"] == {
        domain: {"VerificationStatus": "Pending", "VerificationToken": token}
    }


def test_dkim_attributes_and_enable(ses, unique):
    domain = f"dkim-{unique}.example.com"
    ses.verify_domain_identity(Domain=domain)
    before = ses.get_identity_dkim_attributes(Identities=[domain])["DkimAttributes"][domain]
    assert before == {"DkimEnabled": False, "DkimVerificationStatus": "NotStarted"}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.set_identity_dkim_enabled(Identity=domain, DkimEnabled=True)
    assert message(e) == f"Domain {domain} is not verified for DKIM signing."

    tokens = ses.verify_domain_dkim(Domain=domain)["DkimTokens"]
    assert len(tokens) == 3 and all(len(t) == 32 for t in tokens)
    assert ses.verify_domain_dkim(Domain=domain)["DkimTokens"] == tokens
    after = ses.get_identity_dkim_attributes(Identities=[domain])["DkimAttributes"][domain]
    assert after == {"DkimEnabled": True, "DkimVerificationStatus": "Pending", "DkimTokens": tokens}
    ses.set_identity_dkim_enabled(Identity=domain, DkimEnabled=False)
    off = ses.get_identity_dkim_attributes(Identities=[domain])["DkimAttributes"][domain]
    assert off["DkimEnabled"] is False

    addr = f"me@{domain}"
    ses.verify_email_identity(EmailAddress=addr)
    email = ses.get_identity_dkim_attributes(Identities=[addr])["DkimAttributes"][addr]
    assert email == {"DkimEnabled": False, "DkimVerificationStatus": "NotStarted"}
    ses.set_identity_dkim_enabled(Identity=addr, DkimEnabled=True)
    assert ses.get_identity_dkim_attributes(Identities=[addr])["DkimAttributes"][addr]["DkimEnabled"]


def test_list_identities_paging_and_type_filter(server):
    ses = server.client("ses", region="ap-southeast-2")
    names = [f"p{i}@paging.example" for i in range(5)] + ["paging.example"]
    for n in names[:5]:
        ses.verify_email_identity(EmailAddress=n)
    ses.verify_domain_identity(Domain=names[5])
    seen, token = [], None
    while True:
        kwargs = {"MaxItems": 2}
        if token:
            kwargs["NextToken"] = token
        r = ses.list_identities(**kwargs)
        assert len(r["Identities"]) <= 2
        seen += r["Identities"]
        token = r.get("NextToken")
        if not token:
            break
    assert seen == names
    assert ses.list_identities(IdentityType="Domain")["Identities"] == ["paging.example"]
    assert len(ses.list_identities(IdentityType="EmailAddress")["Identities"]) == 5
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.list_identities(NextToken="not-a-token")
    assert code(e) == "InvalidParameterValue"


def test_get_attributes_caps_at_100(ses):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.get_identity_verification_attributes(Identities=[f"d{i}.example" for i in range(101)])
    assert code(e) == "ValidationError"
    assert "less than or equal to 100" in message(e)


def test_delete_identity_is_idempotent(ses, unique):
    domain = f"del-{unique}.example"
    ses.verify_domain_identity(Domain=domain)
    ses.delete_identity(Identity=domain)
    ses.delete_identity(Identity=domain)
    assert domain not in ses.list_identities()["Identities"]


def test_empty_identities_list_is_accepted(ses):
    # botocore sends the bare `Identities=` for an empty list.
    assert ses.get_identity_verification_attributes(Identities=[])["VerificationAttributes"] == {}


def test_unimplemented_operation_names_itself(ses):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.create_receipt_rule_set(RuleSetName="x")
    assert code(e) == "NotImplemented"
    assert "CreateReceiptRuleSet" in message(e)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501


def test_sns_requests_reach_snss_own_operations(server):
    """A request signed for SNS is read as SNS's Query API, whose operations
    are generated from SNS's model: until Sesame serves one, it names
    itself, after its input has been checked against the model."""
    sns = server.client("sns")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.list_platform_applications()
    assert code(e) == "NotImplemented"
    assert message(e) == "Sesame does not implement the SNS operation ListPlatformApplications yet."
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.add_permission(TopicArn="arn:aws:sns:us-east-1:111111111111:t", Label="l",
                           AWSAccountId=["222222222222"], ActionName=["Publish"])
    assert code(e) == "NotImplemented" and "AddPermission" in message(e)
    # Served operations answer in SNS's own error envelope.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.get_topic_attributes(TopicArn="arn:aws:sns:us-east-1:111111111111:missing")
    assert code(e) == "NotFound"


def test_regions_are_separate(server, unique):
    east = server.client("ses", region="us-east-1")
    west = server.client("ses", region="eu-west-1")
    addr = f"region-{unique}@example.com"
    east.verify_email_identity(EmailAddress=addr)
    assert addr in east.list_identities()["Identities"]
    assert addr not in west.list_identities()["Identities"]
    assert west.get_identity_verification_attributes(Identities=[addr])["VerificationAttributes"] == {}
