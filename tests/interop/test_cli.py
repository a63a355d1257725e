"""The AWS CLI (`aws ses …`, `aws sesv2 …`) against Sesame."""
import json


def test_cli_v1_identity_flow(server):
    server.cli("ses", "verify-email-identity", "--email-address", "cli@example.com")
    server.cli("ses", "verify-domain-identity", "--domain", "cli.example")
    tokens = json.loads(server.cli("ses", "verify-domain-dkim", "--domain", "cli.example").stdout)["DkimTokens"]
    assert len(tokens) == 3
    listed = json.loads(server.cli("ses", "list-identities").stdout)["Identities"]
    assert "cli@example.com" in listed and "cli.example" in listed
    attrs = json.loads(
        server.cli(
            "ses", "get-identity-verification-attributes", "--identities", "cli@example.com", "cli.example"
        ).stdout
    )["VerificationAttributes"]
    assert attrs["cli@example.com"] == {"VerificationStatus": "Pending"}
    assert len(attrs["cli.example"]["VerificationToken"]) == 44
    dkim = json.loads(server.cli("ses", "get-identity-dkim-attributes", "--identities", "cli.example").stdout)
    assert dkim["DkimAttributes"]["cli.example"]["DkimTokens"] == tokens
    server.cli("ses", "set-identity-dkim-enabled", "--identity", "cli.example", "--no-dkim-enabled")
    server.cli("ses", "delete-identity", "--identity", "cli@example.com")
    listed = json.loads(server.cli("ses", "list-identities").stdout)["Identities"]
    assert "cli@example.com" not in listed


def test_cli_v1_error(server):
    p = server.cli("ses", "verify-email-identity", "--email-address", "bad address", check=False)
    assert p.returncode != 0
    assert "InvalidParameterValue" in p.stderr


def test_cli_v2_identity_flow(server):
    out = json.loads(server.cli("sesv2", "create-email-identity", "--email-identity", "cli2.example",
                                "--tags", "Key=env,Value=test").stdout)
    assert out["IdentityType"] == "DOMAIN"
    got = json.loads(server.cli("sesv2", "get-email-identity", "--email-identity", "cli2.example").stdout)
    assert got["VerificationStatus"] == "PENDING"
    assert got["Tags"] == [{"Key": "env", "Value": "test"}]
    # Whichever list route this CLI's botocore uses, it must work.
    listed = json.loads(server.cli("sesv2", "list-email-identities").stdout)["EmailIdentities"]
    assert "cli2.example" in [i["IdentityName"] for i in listed]
    server.cli("sesv2", "put-email-identity-dkim-attributes", "--email-identity", "cli2.example", "--no-signing-enabled")
    arn = "arn:aws:ses:us-east-1:111111111111:identity/cli2.example"
    server.cli("sesv2", "untag-resource", "--resource-arn", arn, "--tag-keys", "env")
    tags = json.loads(server.cli("sesv2", "list-tags-for-resource", "--resource-arn", arn).stdout)["Tags"]
    assert tags == []
    server.cli("sesv2", "delete-email-identity", "--email-identity", "cli2.example")
    p = server.cli("sesv2", "get-email-identity", "--email-identity", "cli2.example", check=False)
    assert p.returncode != 0 and "NotFoundException" in p.stderr


def test_operator_cli_creates_accounts_as_the_deployment_does(make_server):
    """`sesame accounts set-quota` on an account the server never stored
    keeps the deployment's default: production under --no-sandbox (it used
    to put the account in the sandbox)."""
    s = make_server(["--dev", "--no-sandbox"])
    sesv2 = s.client("sesv2")
    assert sesv2.get_account()["ProductionAccessEnabled"] is True
    out = s.sesame("accounts", "set-quota", "--account", "111111111111", "--region", "us-east-1",
                   "--max-24h-send", "500")
    assert "access: production" in out.stdout
    got = sesv2.get_account()
    assert got["ProductionAccessEnabled"] is True
    assert got["SendQuota"]["Max24HourSend"] == 500
