#!/usr/bin/env python3
"""Which pages does one writer round rewrite? A model of the SQLite
writer's capture-mode round (the send ledger upsert, then per message: the
message, its delivery finished at acceptance, its Delivery event), run on
the real migrations with Python's sqlite3. After warming the tables it
runs --rounds rounds of --per messages on average, then reads the WAL's
frame headers and maps each page to its table or index with `dbstat`.

Usage: bench/wal_frames.py [--rounds 2000] [--per 3.4] [--raw 319] [--event 484]
The defaults are what the SendEmail benchmark measured: 3.4 jobs a round,
a 319-byte message and a 484-byte event. Needs only Python. It models the
statements, not the writer's timing: it says how many pages a round
writes, not how long that takes.
"""
import argparse
import collections
import glob
import os
import random
import sqlite3
import struct
import tempfile
import uuid

MIGRATIONS = os.path.join(os.path.dirname(__file__), "..", "crates", "sesame-store", "migrations", "sqlite")
SCOPE = ("000000000000", "us-east-1")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2000)
    ap.add_argument("--per", type=float, default=3.4)
    ap.add_argument("--raw", type=int, default=319)
    ap.add_argument("--event", type=int, default=484)
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="sesame-wal-")
    path = os.path.join(d, "t.db")
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=NORMAL")
    c.execute("PRAGMA wal_autocheckpoint=0")
    for m in sorted(glob.glob(os.path.join(MIGRATIONS, "*.sql"))):
        c.executescript(open(m).read())
    raw, event = b"x" * args.raw, "e" * args.event
    now = 1_795_000_000_000

    def round_of(n, at):
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO send_ledger (account_id, region, minute, recipients) VALUES (?, ?, ?, ?) "
                  "ON CONFLICT (account_id, region, minute) DO UPDATE SET "
                  "recipients = send_ledger.recipients + excluded.recipients", (*SCOPE, at // 60_000, n))
        for _ in range(n):
            mid = f"{at:016x}-{uuid.uuid4()}-000000"
            c.execute("INSERT INTO messages (id, account_id, region, operation, source, destinations, subject, "
                      "created_at, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (mid, *SCOPE, "SendEmail", "bench@example.com", '["rcpt@example.org"]', "Benchmark", at, raw))
            c.execute("INSERT INTO deliveries (message_id, account_id, region, domain, recipients, state, attempts, "
                      "lease_until, next_attempt_at, accepted_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (mid, *SCOPE, "example.org", '["rcpt@example.org"]', "delivered", 1, None, at, at, at))
            c.execute("INSERT INTO events (account_id, region, message_id, kind, at, data) VALUES (?, ?, ?, ?, ?, ?)",
                      (*SCOPE, mid, "Delivery", at, event))
        c.execute("COMMIT")

    rng = random.Random(1)
    whole, frac = int(args.per), args.per - int(args.per)
    for r in range(3 * args.rounds):  # warm: the trees have interior pages
        round_of(whole + (rng.random() < frac), now + r)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    jobs = 0
    for r in range(args.rounds):
        n = whole + (rng.random() < frac)
        jobs += n
        round_of(n, now + 3 * args.rounds + r)
    owner = {page: name for name, page in c.execute("SELECT name, pageno FROM dbstat")}
    wal = open(path + "-wal", "rb").read()
    size = struct.unpack(">I", wal[8:12])[0]
    counts = collections.Counter()
    for off in range(32, len(wal) - 24, 24 + size):
        page = struct.unpack(">I", wal[off:off + 4])[0]
        counts["page 1 (header)" if page == 1 else owner.get(page, "free")] += 1
    frames = sum(counts.values())
    print(f"{frames / args.rounds:.2f} WAL frames a round, {frames / jobs:.2f} a message "
          f"({args.rounds} rounds, {jobs / args.rounds:.2f} messages a round)")
    for name, n in counts.most_common():
        print(f"  {n / args.rounds:5.2f}  {name}")


if __name__ == "__main__":
    main()
