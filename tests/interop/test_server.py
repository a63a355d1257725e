"""The server process: health, configuration, persistence, shutdown and the
operator commands."""
import os
import subprocess
import tempfile
import urllib.request

import botocore.exceptions
import pytest

from conftest import BIN, Server


def test_health(server):
    with urllib.request.urlopen(server.url + "/_sesame/health") as r:
        assert r.status == 200
        import json

        assert json.loads(r.read())["status"] == "ok"


def test_everything_survives_a_restart(make_server):
    s = make_server()
    ses = s.client("ses", region="eu-central-1")
    ses.verify_email_identity(EmailAddress="keep@example.com")
    token = ses.verify_domain_identity(Domain="keep.example")["VerificationToken"]
    key_out = s.sesame("keys", "create", "--account", "999988887777").stdout
    assert s.stop() == 0, "SIGTERM is a clean shutdown"
    assert "sesame stopped" in s.read_log()
    again = Server(s.data_dir).start()
    try:
        ses = again.client("ses", region="eu-central-1")
        assert ses.list_identities()["Identities"] == ["keep@example.com", "keep.example"]
        assert ses.verify_domain_identity(Domain="keep.example")["VerificationToken"] == token
        lines = dict(l.split(" = ") for l in key_out.splitlines() if " = " in l)
        c = again.client("ses", key=lines["aws_access_key_id"], secret=lines["aws_secret_access_key"])
        assert c.list_identities()["Identities"] == []
    finally:
        again.stop()


def test_auto_verify(make_server):
    s = make_server(["--auto-verify"])
    sesv2 = s.client("sesv2")
    r = sesv2.create_email_identity(EmailIdentity="auto.example")
    assert r["VerifiedForSendingStatus"] is True
    assert r["DkimAttributes"]["Status"] == "SUCCESS"
    ses = s.client("ses")
    ses.verify_email_identity(EmailAddress="auto@example.com")
    assert ses.list_verified_email_addresses()["VerifiedEmailAddresses"] == ["auto@example.com"]


def test_operator_verifies_an_identity(make_server):
    s = make_server()
    sesv2 = s.client("sesv2", region="us-west-2")
    sesv2.create_email_identity(EmailIdentity="op.example")
    out = s.sesame("identities", "verify", "--account", "111111111111", "--region", "us-west-2", "op.example")
    assert "op.example is verified" in out.stdout
    got = sesv2.get_email_identity(EmailIdentity="op.example")
    assert got["VerificationStatus"] == "SUCCESS"
    assert got["DkimAttributes"]["Status"] == "SUCCESS"
    # Only that region.
    east = s.client("sesv2", region="us-east-1")
    with pytest.raises(botocore.exceptions.ClientError):
        east.get_email_identity(EmailIdentity="op.example")
    p = s.sesame("identities", "verify", "--account", "111111111111", "--region", "us-west-2", "nope.example", check=False)
    assert p.returncode != 0 and "does not exist" in p.stderr


def run_bin(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30, env=e)


def test_bad_settings_are_named():
    d = tempfile.mkdtemp()
    p = run_bin("serve", "--listen", "not-an-address", "--data-dir", d)
    assert p.returncode != 0 and "setting listen" in p.stderr
    p = run_bin("serve", "--data-dir", d, env={"SESAME_DEV_ACCOUNT_ID": "123"})
    assert p.returncode != 0 and "dev_account_id" in p.stderr
    cfg = os.path.join(d, "bad.toml")
    with open(cfg, "w") as f:
        f.write('listen = "127.0.0.1:0"\nverbose = true\n')
    p = run_bin("serve", "--config", cfg, "--data-dir", d)
    assert p.returncode != 0 and "verbose" in p.stderr


def test_config_file_and_environment(make_server):
    d = tempfile.mkdtemp()
    cfg = os.path.join(d, "sesame.toml")
    with open(cfg, "w") as f:
        f.write("dev = true\nauto_verify = true\n")
    s = make_server(["--config", cfg], data_dir=d)
    # dev from the file: any credentials; auto_verify from the file too.
    ses = s.client("ses", key="test", secret="test")
    ses.verify_email_identity(EmailAddress="cfg@example.com")
    assert ses.list_verified_email_addresses()["VerifiedEmailAddresses"] == ["cfg@example.com"]
    s2 = make_server(env={"SESAME_DEV": "true"})
    s2.client("ses", key="test", secret="test").list_identities()
