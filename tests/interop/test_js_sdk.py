"""One identity flow with the AWS SDK for JavaScript v3 (it signs
x-amz-content-sha256, amz-sdk-* and content-length, unlike botocore)."""
import os
import subprocess

from conftest import ROOT, ROOT_KEY, ROOT_SECRET


def test_js_sdk_identity_flow(server):
    js = os.path.join(ROOT, "tests", "js")
    env = dict(os.environ, SESAME_URL=server.url, AWS_ACCESS_KEY_ID=ROOT_KEY, AWS_SECRET_ACCESS_KEY=ROOT_SECRET)
    p = subprocess.run(["node", "identity_flow.mjs"], cwd=js, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr + server.read_log()[-3000:]
    assert "js identity flow ok" in p.stdout


def test_js_sdk_custom_verification_templates(server):
    """The From address's domain is verified by the operator first."""
    ses = server.client("ses")
    ses.verify_domain_identity(Domain="js-brand.example")
    server.sesame("identities", "verify", "--account", "111111111111", "--region", "us-east-1", "js-brand.example")
    js = os.path.join(ROOT, "tests", "js")
    env = dict(os.environ, SESAME_URL=server.url, AWS_ACCESS_KEY_ID=ROOT_KEY, AWS_SECRET_ACCESS_KEY=ROOT_SECRET,
               SESAME_FROM="hello@js-brand.example")
    p = subprocess.run(["node", "custom_verification.mjs"], cwd=js, env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr + server.read_log()[-3000:]
    assert "js custom verification ok" in p.stdout
