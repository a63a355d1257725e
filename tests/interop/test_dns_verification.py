"""Domain verification for real: a DNS server on loopback (dnslib) holds the
zone the tests edit, Sesame's verifier reads it, statuses move as in SES,
and the usual publishing mistakes are diagnosed. Sesame's own DKIM zone
listener answers the Easy DKIM keys."""
import base64
import re
import time
import urllib.request

import botocore.exceptions
import pytest
from dnslib import DNSRecord

from conftest import free_port
from peers import Dns

ACCOUNT = ["--account", "111111111111", "--region", "us-east-1"]
ZONE = "dkim.sesame.test"


def start(make_server, dns, *extra, interval="1s"):
    port = free_port()
    s = make_server([
        "--dns-server", dns.address,
        "--verify-interval", interval,
        "--dkim-cname-zone", ZONE,
        "--dns-listen", f"127.0.0.1:{port}",
        "--hostname", "sesame.test",
        *extra,
    ])
    s.dns_port = port
    return s


def wait_for(what, fetch, timeout=20):
    deadline = time.time() + timeout
    while True:
        got = fetch()
        if what(got):
            return got
        if time.time() > deadline:
            raise AssertionError(f"still {got}")
        time.sleep(0.1)


def v1_status(ses, domain):
    attrs = ses.get_identity_verification_attributes(Identities=[domain])["VerificationAttributes"]
    return attrs[domain]["VerificationStatus"]


def check(server, dns, identity):
    """`sesame identities check`: the identity's verification, checked now."""
    return server.sesame("identities", "check", *ACCOUNT, "--dns-server", dns.address,
                         "--dkim-cname-zone", ZONE, identity).stdout


def zone_txt(server, name):
    """Asks Sesame's DKIM zone listener, as a resolver would."""
    reply = DNSRecord.parse(DNSRecord.question(name, "TXT").send("127.0.0.1", server.dns_port, timeout=5))
    return reply.header.rcode, ["".join(s.decode() for s in rr.rdata.data) for rr in reply.rr], reply


def test_legacy_txt_pending_success_temporary_failure(make_server):
    with Dns() as dns:
        s = start(make_server, dns)
        ses, sesv2 = s.client("ses"), s.client("sesv2")
        domain = "legacy.test"
        dns.soa(domain, "ns1.legacy.test", "hostmaster.legacy.test", 2026112201)
        token = ses.verify_domain_identity(Domain=domain)["VerificationToken"]
        info = wait_for(lambda i: "LastCheckedTimestamp" in i,
                        lambda: sesv2.get_email_identity(EmailIdentity=domain)["VerificationInfo"])
        assert info["ErrorType"] == "HOST_NOT_FOUND"
        assert info["SOARecord"] == {"PrimaryNameServer": "ns1.legacy.test",
                                     "AdminEmail": "hostmaster@legacy.test", "SerialNumber": 2026112201}
        assert "LastSuccessTimestamp" not in info
        assert v1_status(ses, domain) == "Pending"

        dns.txt(f"_amazonses.{domain}", token)
        wait_for(lambda st: st == "Success", lambda: v1_status(ses, domain))
        got = sesv2.get_email_identity(EmailIdentity=domain)
        assert got["VerifiedForSendingStatus"] is True and got["VerificationStatus"] == "SUCCESS"
        assert "ErrorType" not in got["VerificationInfo"]
        assert got["VerificationInfo"]["LastSuccessTimestamp"]
        metrics = s.metrics()
        checks = re.search(r"^sesame_verification_checks_total (\d+)", metrics, re.M)
        changes = re.search(r"^sesame_verification_changes_total (\d+)", metrics, re.M)
        assert checks and int(checks.group(1)) >= 2 and changes and int(changes.group(1)) >= 1, metrics

        # The record disappears: TemporaryFailure; it comes back: Success.
        dns.remove(f"_amazonses.{domain}")
        wait_for(lambda st: st == "TemporaryFailure", lambda: v1_status(ses, domain))
        got = sesv2.get_email_identity(EmailIdentity=domain)
        assert got["VerificationStatus"] == "TEMPORARY_FAILURE"
        assert got["VerificationInfo"]["ErrorType"] == "HOST_NOT_FOUND"
        # The grace period: the domain may still send until it is Failed.
        assert got["VerifiedForSendingStatus"] is True
        dns.txt(f"_amazonses.{domain}", token)
        wait_for(lambda st: st == "Success", lambda: v1_status(ses, domain))


def test_easy_dkim_cnames_and_sesames_own_zone(make_server):
    with Dns() as dns:
        s = start(make_server, dns)
        sesv2, ses = s.client("sesv2"), s.client("ses")
        domain = "easy.test"
        tokens = sesv2.create_email_identity(EmailIdentity=domain)["DkimAttributes"]["Tokens"]
        assert len(tokens) == 3
        # What to publish: a CNAME per token into Sesame's zone.
        out = s.sesame("identities", "records", *ACCOUNT, "--dkim-cname-zone", ZONE, domain).stdout
        for t in tokens:
            assert f"{t}._domainkey.{domain}\tCNAME\t\"{t}.{ZONE}\"" in out
        # Sesame's zone answers each token with the key; without a zone the
        # same key is what `records` tells the owner to publish as TXT.
        txt_form = s.sesame("identities", "records", *ACCOUNT, domain).stdout
        key_record = [line.split("\t")[2].strip('"') for line in txt_form.splitlines() if "._domainkey." in line][0]
        for t in tokens:
            rcode, answers, reply = zone_txt(s, f"{t}.{ZONE}")
            assert rcode == 0 and reply.header.aa == 1
            assert answers == [key_record]
        rcode, answers, reply = zone_txt(s, f"unknown.{ZONE}")
        assert rcode == 3 and answers == [] and reply.auth, "NXDOMAIN with the zone's SOA"
        rcode, _, _ = zone_txt(s, "elsewhere.test")
        assert rcode == 5, "names outside the zone are refused"

        # Two of three CNAMEs: still pending.
        for t in tokens[:2]:
            dns.cname(f"{t}._domainkey.{domain}", f"{t}.{ZONE}")
        out = check(s, dns, domain)
        assert "DKIM          Pending" in out and "[not-found]" in out, out
        dns.cname(f"{tokens[2]}._domainkey.{domain}", f"{tokens[2]}.{ZONE}")
        got = wait_for(lambda g: g["DkimAttributes"]["Status"] == "SUCCESS",
                       lambda: sesv2.get_email_identity(EmailIdentity=domain))
        assert got["VerifiedForSendingStatus"] is True
        v1 = ses.get_identity_dkim_attributes(Identities=[domain])["DkimAttributes"][domain]
        assert v1["DkimVerificationStatus"] == "Success"

        # Key rotation as in SES: a new key is served at once under the same tokens.
        sesv2.put_email_identity_dkim_signing_attributes(
            EmailIdentity=domain, SigningAttributesOrigin="AWS_SES",
            SigningAttributes={"NextSigningKeyLength": "RSA_1024_BIT"})
        _, rotated, _ = zone_txt(s, f"{tokens[0]}.{ZONE}")
        assert rotated and rotated != [key_record]
        p = rotated[0].split("p=")[1]
        assert 150 < len(base64.b64decode(p)) < 200, "a 1024-bit SubjectPublicKeyInfo"


def test_diagnoses(make_server):
    with Dns() as dns:
        s = start(make_server, dns, interval="1h")
        ses, sesv2 = s.client("ses"), s.client("sesv2")
        domain = "diag.test"
        token = ses.verify_domain_identity(Domain=domain)["VerificationToken"]
        name = f"_amazonses.{domain}"
        cases = [
            ("zone-appended", lambda: dns.txt(f"{name}.{domain}", token)),
            ("missing-underscore", lambda: dns.txt(f"amazonses.{domain}", token)),
            ("quoted", lambda: dns.txt(name, f'"{token}"')),
            ("wrong-field", lambda: dns.txt(name, name)),
            ("at-apex", lambda: dns.txt(domain, token)),
        ]
        for kind, publish in cases:
            for n in (f"{name}.{domain}", f"amazonses.{domain}", name, domain):
                dns.remove(n)
            dns.soa(domain, "ns1.diag.test", "admin.diag.test", 1)
            publish()
            out = check(s, dns, domain)
            assert f"[{kind}]" in out, f"{kind}: {out}"
            assert "verification  Pending" in out
            # Stored with the identity: `show` prints the same diagnosis.
            assert f"[{kind}]" in s.sesame("identities", "show", *ACCOUNT, domain).stdout
        # The last case left no record at _amazonses.diag.test.
        assert sesv2.get_email_identity(EmailIdentity=domain)["VerificationInfo"]["ErrorType"] == "HOST_NOT_FOUND"

        # Easy DKIM: a CNAME pointing elsewhere, a TXT where a CNAME belongs.
        dk = "dk-diag.test"
        tokens = sesv2.create_email_identity(EmailIdentity=dk)["DkimAttributes"]["Tokens"]
        dns.cname(f"{tokens[0]}._domainkey.{dk}", f"{tokens[0]}.dkim.amazonses.com")
        dns.txt(f"{tokens[1]}._domainkey.{dk}", f"{tokens[1]}.{ZONE}")
        out = check(s, dns, dk)
        assert "[cname-elsewhere]" in out and f"must point to {tokens[0]}.{ZONE}" in out, out
        assert "[txt-for-cname]" in out, out

        # Fixed: verified, and the diagnoses are gone.
        dns.remove(f"{tokens[1]}._domainkey.{dk}")
        for t in tokens:
            dns.cname(f"{t}._domainkey.{dk}", f"{t}.{ZONE}")
        out = check(s, dns, dk)
        assert "verification  Success" in out and "diagnoses" not in out, out

        e = s.sesame("identities", "check", *ACCOUNT, "--dns-server", dns.address, "me@example.com",
                     check=False)
        assert e.returncode != 0


def test_custom_mail_from_verified_by_its_mx(make_server):
    with Dns() as dns:
        s = start(make_server, dns, "--dev", "--no-sandbox")
        ses = s.client("ses")
        domain = "mf.test"
        token = ses.verify_domain_identity(Domain=domain)["VerificationToken"]
        dns.txt(f"_amazonses.{domain}", token)
        wait_for(lambda st: st == "Success", lambda: v1_status(ses, domain))
        ses.set_identity_mail_from_domain(Identity=domain, MailFromDomain=f"bounce.{domain}",
                                          BehaviorOnMXFailure="RejectMessage")

        def send():
            return ses.send_email(Source=f"me@{domain}", Destination={"ToAddresses": ["to@example.com"]},
                                  Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}})

        with pytest.raises(botocore.exceptions.ClientError) as e:
            send()
        assert e.value.response["Error"]["Code"] == "MailFromDomainNotVerifiedException"
        # An MX to the wrong host is not enough.
        dns.mx(f"bounce.{domain}", "mx.elsewhere.test")
        out = check(s, dns, domain)
        assert "MAIL FROM     bounce.mf.test Pending" in out and "[wrong-value]" in out, out
        assert "[spf-missing]" in out
        dns.mx(f"bounce.{domain}", "sesame.test")
        dns.txt(f"bounce.{domain}", "v=spf1 a:sesame.test ~all")

        def mail_from_status():
            attrs = ses.get_identity_mail_from_domain_attributes(Identities=[domain])
            return attrs["MailFromDomainAttributes"][domain]["MailFromDomainStatus"]

        wait_for(lambda st: st == "Success", mail_from_status)
        assert send()["MessageId"]
        records = s.sesame("identities", "records", *ACCOUNT, "--mail-from-mx", "sesame.test", domain).stdout
        assert f"bounce.{domain}\tMX\t\"10 sesame.test\"" in records
        assert f"bounce.{domain}\tTXT\t\"v=spf1 a:sesame.test ~all\"" in records


def test_dns_settings_are_checked_at_start(make_server):
    from conftest import BIN
    import subprocess

    p = subprocess.run([BIN, "serve", "--dns-listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "dkim.cname_zone" in p.stderr
    p = subprocess.run([BIN, "serve", "--verify-interval", "soon"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "verify_interval" in p.stderr


def test_check_all_reports_each_domain_as_a_line_when_not_on_a_terminal(make_server):
    """`sesame identities check --all`: every domain identity checked now;
    away from a terminal, a plain line each and a summary (a progress bar
    only on a terminal)."""
    with Dns() as dns:
        s = start(make_server, dns, interval="1h")
        ses = s.client("ses")
        token = ses.verify_domain_identity(Domain="one.test")["VerificationToken"]
        ses.verify_domain_identity(Domain="two.test")
        ses.verify_email_identity(EmailAddress="me@three.test")
        s.client("ses", region="eu-west-1").verify_domain_identity(Domain="four.test")
        dns.txt("_amazonses.one.test", token)
        out = s.sesame("identities", "check", "--all", "--dns-server", dns.address,
                       "--dkim-cname-zone", ZONE).stdout
        lines = out.strip().splitlines()
        assert "[1/3]" in lines[0] and "[3/3]" in lines[2], out
        assert any("one.test (111111111111 us-east-1): Success" in l for l in lines), out
        assert any("two.test (111111111111 us-east-1): Pending" in l for l in lines), out
        assert lines[-1] == "checked 3 domain identities: 1 verified, 2 not, 0 not checked"
        assert "\x1b[" not in out, "no progress bar away from a terminal"
        assert v1_status(ses, "one.test") == "Success"
        out = s.sesame("identities", "check", "--all", "--region", "eu-west-1", "--dns-server", dns.address,
                       "--dkim-cname-zone", ZONE).stdout
        assert "checked 1 domain identities" in out and "four.test" in out
        p = s.sesame("identities", "check", "one.test", check=False)
        assert p.returncode != 0 and "--account is required" in p.stderr
