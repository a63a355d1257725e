"""Several nodes on one PostgreSQL: two `sesame serve` processes share a
database, with load on both. Every accepted message reaches the SMTP sink
though one node is killed with SIGKILL mid-delivery (its leases run out and
the other takes its deliveries over), duplicates are no more than the
attempts it had in flight, and the daily quota is exact across the nodes.

Needs SESAME_TEST_POSTGRES (scripts/test.sh starts a throwaway cluster)."""
import os
import signal
import tempfile
import threading
import time

import botocore.exceptions
import pytest

from conftest import new_database
from peers import Sink

CONCURRENCY = 8


@pytest.fixture
def database():
    admin = os.environ.get("SESAME_TEST_POSTGRES")
    if not admin:
        if os.environ.get("CI"):
            raise RuntimeError("SESAME_TEST_POSTGRES is not set (scripts/test.sh sets it)")
        pytest.skip("no PostgreSQL server (SESAME_TEST_POSTGRES)")
    return new_database(admin)


def node(make_server, database, name, *args):
    d = tempfile.mkdtemp(prefix=f"sesame-node-{name}-")
    with open(os.path.join(d, "database-url"), "w") as f:
        f.write(database)
    return make_server(
        ["--dev", "--auto-verify", "--no-sandbox", "--node-name", name, "--hostname", "sesame.test",
         *args],
        data_dir=d,
    )


def set_quota(server, rate, day):
    conf = os.path.join(server.data_dir, "ops.toml")
    with open(conf, "w") as f:
        f.write("no_sandbox = true\n")
    server.sesame("--config", conf, "accounts", "set-quota", "--account", "111111111111",
                  "--region", "us-east-1", "--max-send-rate", str(rate), "--max-24h-send", str(day))


def send(client, source, to):
    return client.send_email(
        FromEmailAddress=source,
        Destination={"ToAddresses": [to]},
        Content={"Simple": {"Subject": {"Data": "Hi"}, "Body": {"Text": {"Data": "Hi.\n"}}}},
    )["MessageId"]


def test_two_nodes_deliver_everything_when_one_is_killed(make_server, database, unique):
    n = 240
    with Sink(delay=0.05) as sink:
        relay = ["--relay", f"smtp://127.0.0.1:{sink.port}?tls=none",
                 "--delivery-concurrency", str(CONCURRENCY), "--delivery-lease", "3s"]
        a = node(make_server, database, "node-a", *relay)
        b = node(make_server, database, "node-b", *relay)
        domain = f"nodes-{unique}.example.com"
        a.client("sesv2").create_email_identity(EmailIdentity=domain)
        set_quota(a, 100000, -1)
        ids, lock = [], threading.Lock()

        def load(server, k):
            c = server.client("sesv2")
            for i in range(k):
                mid = send(c, f"a@{domain}", f"u{i}@dest.test")
                with lock:
                    ids.append(mid)

        threads = [threading.Thread(target=load, args=(s, n // 4)) for s in (a, b, a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(ids) == n
        # Both nodes deliver: kill one while mail is still queued.
        deadline = time.time() + 30
        while len(sink.messages()) < 30 and time.time() < deadline:
            time.sleep(0.01)
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait()
        before = len(sink.messages())
        assert before < n, "the kill came while mail was still queued"
        # The survivor takes the dead node's claims once their leases run out.
        deadline = time.time() + 90
        while time.time() < deadline:
            if {m.mail_from.split("@")[0] for m in sink.messages()} >= set(ids):
                break
            time.sleep(0.1)
        got = [m.mail_from.split("@")[0] for m in sink.messages()]
        missing = set(ids) - set(got)
        assert not missing, f"{len(missing)} accepted messages were never delivered"
        duplicates = len(got) - len(set(got))
        print(f"kill -9 of one node after {before} of {n} delivered: {duplicates} duplicate(s)")
        assert duplicates <= CONCURRENCY, "only attempts in flight on the dead node may repeat"


def test_the_daily_quota_is_exact_across_two_nodes(make_server, database, unique):
    a = node(make_server, database, "node-a")
    b = node(make_server, database, "node-b")
    domain = f"quota-{unique}.example.com"
    a.client("sesv2").create_email_identity(EmailIdentity=domain)
    set_quota(a, 100000, 50)
    accepted, refused, lock = [], [], threading.Lock()

    def load(server):
        c = server.client("sesv2")
        for i in range(10):
            try:
                mid = send(c, f"a@{domain}", f"q{i}@dest.test")
                with lock:
                    accepted.append(mid)
            except botocore.exceptions.ClientError as e:
                with lock:
                    refused.append(e.response["Error"])

    # 16 concurrent senders, eight on each node.
    threads = [threading.Thread(target=load, args=(s,)) for s in [a, b] * 8]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(accepted) == 50, f"{len(accepted)} accepted, {refused[:3]}"
    assert len(refused) == 110
    assert {e["Message"] for e in refused} == {"Daily message quota exceeded"}, refused[:3]
    # Both nodes report the same count from the database.
    for s in (a, b):
        quota = s.client("sesv2").get_account()["SendQuota"]
        assert quota["SentLast24Hours"] == 50.0


def test_events_are_published_once_across_two_nodes(make_server, database, unique):
    """Both nodes run event publishing, which the lease gives to one at a
    time: every Send event of messages accepted on either node reaches the
    topic's subscriber exactly once."""
    import json

    from test_feedback import Endpoint, subscribe

    endpoint = Endpoint()
    try:
        a = node(make_server, database, "node-a", "--delivery-allow-private")
        b = node(make_server, database, "node-b", "--delivery-allow-private")
        _, arn, _ = subscribe(a, endpoint)
        sesv2 = a.client("sesv2")
        sesv2.create_email_identity(EmailIdentity=f"pub-{unique}.example.com")
        # The production rate (14/s) would refuse part of a burst of 40.
        set_quota(a, 100000, -1)
        sesv2.create_configuration_set(ConfigurationSetName="once")
        sesv2.create_configuration_set_event_destination(
            ConfigurationSetName="once", EventDestinationName="to-sns",
            EventDestination={"Enabled": True, "MatchingEventTypes": ["SEND"], "SnsDestination": {"TopicArn": arn}})
        endpoint.next()  # the destination's test notification
        sent = []
        for i in range(40):
            c = (a if i % 2 else b).client("sesv2")
            sent.append(c.send_email(
                FromEmailAddress=f"s@pub-{unique}.example.com",
                Destination={"ToAddresses": ["success@simulator.amazonses.com"]},
                Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
                ConfigurationSetName="once",
            )["MessageId"])
        seen = []
        deadline = time.time() + 30
        while time.time() < deadline and len(seen) < len(sent):
            _, m = endpoint.next(timeout=30)
            seen.append(json.loads(m["Message"])["mail"]["messageId"])
        # Anything published twice would arrive within a few more seconds.
        extra_until = time.time() + 3
        while time.time() < extra_until:
            try:
                _, m = endpoint.next(timeout=0.5)
                seen.append(json.loads(m["Message"])["mail"]["messageId"])
            except Exception:
                pass
        assert sorted(seen) == sorted(sent), f"{len(seen)} notifications for {len(sent)} sends"
    finally:
        endpoint.close()


def test_a_node_whose_settings_differ_is_warned_of_them(make_server, database):
    """Nodes must agree on the settings that decide what a request does; a
    node that starts with others than the last node recorded says which."""
    # Links must reach any node: the load balancer's address, on each.
    lb = ("--public-url", "http://ses.lb.test")
    a = node(make_server, database, "node-a", *lb, "--retry-initial", "30s")
    b = node(make_server, database, "node-b", *lb, "--retry-initial", "45s")
    log = b.read_log()
    assert "settings differ from those node node-a started with" in log, log[-2000:]
    line = next(l for l in log.splitlines() if "settings differ" in l)
    assert "settings=retry_initial" in line, line
    # The same settings: no warning.
    c = node(make_server, database, "node-c", *lb, "--retry-initial", "45s")
    assert "settings differ" not in c.read_log()
    assert "settings differ" not in a.read_log()
