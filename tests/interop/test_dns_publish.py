"""Records published for the user, as Route 53 does for SES: a domain
identity's TXT, DKIM and MAIL FROM records sent to the operator's own
authoritative server (Debian's BIND on loopback) as an RFC 2136 dynamic
update signed with TSIG; the identity then verifies with no operator
action; deleting it withdraws its records; a wrong key gets the server's
refusal."""
import base64
import os

from peers import Bind

ACCOUNT = ["--account", "111111111111", "--region", "us-east-1"]


def publishing(bind, secret_file=None):
    return ["--dns-server", bind.address, "--dns-update-server", bind.address, "--tsig-key-name", bind.key_name,
            "--tsig-secret-file", secret_file or bind.secret_file]


def test_published_on_creation_verified_and_withdrawn_on_deletion(make_server):
    with Bind() as bind:
        s = make_server(["--dev", *publishing(bind), "--publish-on-create", "--verify-interval", "1h"])
        sesv2 = s.client("sesv2")
        sesv2.create_email_identity(EmailIdentity="publish.test")
        got = sesv2.get_email_identity(EmailIdentity="publish.test")
        # Checked at once after the update, not at the next pass (an hour).
        assert got["VerifiedForSendingStatus"] is True and got["DkimAttributes"]["Status"] == "SUCCESS"
        token = s.client("ses").get_identity_verification_attributes(Identities=["publish.test"])[
            "VerificationAttributes"]["publish.test"]["VerificationToken"]
        assert bind.query("_amazonses.publish.test", "TXT") == [token]
        for t in got["DkimAttributes"]["Tokens"]:
            assert bind.query(f"{t}._domainkey.publish.test", "TXT")[0].startswith("v=DKIM1; k=rsa; p=")
        # A record the operator keeps is not Sesame's to withdraw.
        assert bind.query("ns1.publish.test", "A") == ["127.0.0.1"]

        sesv2.delete_email_identity(EmailIdentity="publish.test")
        assert bind.query("_amazonses.publish.test", "TXT") == []
        for t in got["DkimAttributes"]["Tokens"]:
            assert bind.query(f"{t}._domainkey.publish.test", "TXT") == []
        assert bind.query("ns1.publish.test", "A") == ["127.0.0.1"]


def test_the_cli_publishes_and_a_wrong_key_is_refused(make_server, tmp_path):
    with Bind() as bind:
        s = make_server(["--dev", "--dns-server", bind.address, "--verify-interval", "1h"])
        sesv2 = s.client("sesv2")
        sesv2.create_email_identity(EmailIdentity="publish.test")
        sesv2.put_email_identity_mail_from_attributes(EmailIdentity="publish.test",
                                                      MailFromDomain="bounce.publish.test")
        assert sesv2.get_email_identity(EmailIdentity="publish.test")["VerifiedForSendingStatus"] is False

        wrong = tmp_path / "wrong.secret"
        wrong.write_text(base64.b64encode(os.urandom(32)).decode())
        p = s.sesame("identities", "publish", *ACCOUNT, "publish.test", *publishing(bind, str(wrong)), check=False)
        assert p.returncode != 0 and "rcode" in p.stderr and "NOTAUTH" in p.stderr.upper(), p.stderr
        assert bind.secret not in p.stderr + p.stdout and wrong.read_text() not in p.stderr + p.stdout
        assert bind.query("_amazonses.publish.test", "TXT") == [], "a refused update changes nothing"

        p = s.sesame("identities", "publish", *ACCOUNT, "publish.test", *publishing(bind))
        assert "published 6 records for publish.test" in p.stdout, p.stdout
        assert "verification  Success" in p.stdout
        assert bind.query("bounce.publish.test", "MX")[0].startswith("10 ")
        assert bind.query("bounce.publish.test", "TXT")[0].startswith("v=spf1 ")
        assert sesv2.get_email_identity(EmailIdentity="publish.test")["VerifiedForSendingStatus"] is True

        p = s.sesame("identities", "publish", *ACCOUNT, "me@publish.test", *publishing(bind), check=False)
        assert p.returncode != 0
