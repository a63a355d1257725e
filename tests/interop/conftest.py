"""Fixtures that run the real `sesame` binary and point real AWS clients at it.

Every server gets a fresh data directory and a free loopback port. The
binary is target/debug/sesame unless SESAME_BIN names another.

With SESAME_INTEROP_DATABASE=postgres (and SESAME_TEST_POSTGRES naming a
server, as scripts/test.sh sets it), each data directory also gets its own
fresh PostgreSQL database, which the server and the operator commands run
against that directory use: the same tests, on the shared backend.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import boto3
import botocore.config
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("SESAME_BIN", os.path.join(ROOT, "target", "debug", "sesame"))

ROOT_KEY = "AKIASESAMEROOT000001"
ROOT_SECRET = "root-secret-for-tests-only-0123456789abcd"
ROOT_ACCOUNT = "111111111111"
METRICS_TOKEN = "metrics-token-for-tests-0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_admin():
    """The PostgreSQL server's URL, when the suite runs on PostgreSQL."""
    if os.environ.get("SESAME_INTEROP_DATABASE") != "postgres":
        return None
    url = os.environ.get("SESAME_TEST_POSTGRES")
    if not url:
        raise RuntimeError("SESAME_INTEROP_DATABASE=postgres needs SESAME_TEST_POSTGRES")
    return url


def new_database(admin):
    """Creates an empty database on the server; its URL."""
    import uuid

    name = "sesame_interop_" + uuid.uuid4().hex[:12]
    subprocess.run(
        ["psql", admin, "-q", "-v", "ON_ERROR_STOP=1", "-c", f"CREATE DATABASE {name}"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    base = admin.split("?")[0].rsplit("/", 1)[0]
    return f"{base}/{name}"


def drop_database(data_dir):
    """Drops the database new_database made for a data directory (the
    suite on PostgreSQL), once its servers have stopped."""
    admin = postgres_admin()
    path = os.path.join(data_dir, "database-url")
    if admin is None or not os.path.exists(path):
        return
    with open(path) as f:
        name = f.read().strip().rsplit("/", 1)[1].split("?")[0]
    if name.startswith("sesame_interop_"):
        subprocess.run(["psql", admin, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                       capture_output=True, timeout=60)


def database_env(data_dir):
    """SESAME_DATABASE for a data directory's server and commands, when the
    suite runs on PostgreSQL: one database per directory, kept in it, so
    that a server started again on the directory finds its data. (A test
    that shares one database between nodes writes the file itself.)"""
    path = os.path.join(data_dir, "database-url")
    if os.path.exists(path):
        with open(path) as f:
            return {"SESAME_DATABASE": f.read().strip()}
    admin = postgres_admin()
    if admin is None:
        return {}
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(new_database(admin))
    with open(path) as f:
        return {"SESAME_DATABASE": f.read().strip()}


class Server:
    """One running sesame process."""

    def __init__(self, data_dir, args=(), env=None):
        self.data_dir = data_dir
        self.args = list(args)
        self.extra_env = dict(env or {})
        self.proc = None
        self.port = None
        self.log_path = os.path.join(data_dir, "server.log")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.port = free_port()
        env = dict(os.environ)
        env.update(
            SESAME_ROOT_ACCESS_KEY_ID=ROOT_KEY,
            SESAME_ROOT_SECRET_ACCESS_KEY=ROOT_SECRET,
            SESAME_ROOT_ACCOUNT_ID=ROOT_ACCOUNT,
            SESAME_LOG="info",
            # Most tests make many calls a second and ask for several
            # verification emails to one address; the tests of these limits
            # (test_hardening.py) set them back.
            SESAME_API_RATE="off",
            SESAME_VERIFICATION_EMAIL_INTERVAL="off",
            SESAME_METRICS_TOKEN=METRICS_TOKEN,
        )
        env.update(database_env(self.data_dir))
        env.update(self.extra_env)
        # A test's None removes a default above.
        env = {k: v for k, v in env.items() if v is not None}
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir, *self.args],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sesame exited with {self.proc.returncode}:\n{self.read_log()}")
            try:
                with urllib.request.urlopen(self.url + "/_sesame/health", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("sesame did not become healthy:\n" + self.read_log())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
        return self.proc.returncode if self.proc else None

    def metrics(self):
        """The Prometheus text at /_sesame/metrics, with the test token."""
        req = urllib.request.Request(
            self.url + "/_sesame/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read().decode()

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def client(self, service, region="us-east-1", key=ROOT_KEY, secret=ROOT_SECRET):
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.url,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=botocore.config.Config(retries={"max_attempts": 1}),
        )

    def cli(self, *args, region="us-east-1", key=ROOT_KEY, secret=ROOT_SECRET, check=True):
        """Runs the AWS CLI from the test venv against this server."""
        aws = os.path.join(os.path.dirname(os.path.realpath(os.sys.executable)), "aws")
        if not os.path.exists(aws):
            aws = shutil.which("aws")
        env = dict(os.environ)
        env.update(
            AWS_ACCESS_KEY_ID=key,
            AWS_SECRET_ACCESS_KEY=secret,
            AWS_DEFAULT_REGION=region,
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
            AWS_MAX_ATTEMPTS="1",
        )
        env.pop("AWS_PROFILE", None)
        p = subprocess.run(
            [aws, "--endpoint-url", self.url, "--output", "json", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and p.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        return p

    def sesame(self, *args, check=True):
        """Runs an operator command against this server's data directory."""
        env = dict(os.environ)
        env.update(database_env(self.data_dir))
        p = subprocess.run(
            [BIN, *args, "--data-dir", self.data_dir],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        if check and p.returncode != 0:
            raise AssertionError(f"sesame {' '.join(args)} failed: {p.stderr}")
        return p


@pytest.fixture
def make_server():
    """Starts servers on demand; stops them and removes their data afterwards."""
    made = []

    def make(args=(), env=None, data_dir=None):
        d = data_dir or tempfile.mkdtemp(prefix="sesame-test-")
        s = Server(d, args, env).start()
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()
    for d in {s.data_dir for s in made}:
        drop_database(d)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def server():
    """A production-mode server (SigV4 enforced) shared by a test module."""
    d = tempfile.mkdtemp(prefix="sesame-test-")
    s = Server(d).start()
    yield s
    s.stop()
    drop_database(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def ses(server):
    return server.client("ses")


@pytest.fixture
def sesv2(server):
    return server.client("sesv2")


@pytest.fixture
def unique():
    """A fresh name per test, so tests sharing a server do not collide."""
    import uuid

    return uuid.uuid4().hex[:10]
