-- An account's settings per region (sandbox, quotas, production-access review).
CREATE TABLE accounts (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    version INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, region)
);

-- Recipients sent per minute, for the rolling 24-hour quota.
CREATE TABLE send_ledger (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    minute INTEGER NOT NULL,
    recipients INTEGER NOT NULL,
    PRIMARY KEY (account_id, region, minute)
);

-- Accepted messages: what delivery works from, and the local mailbox.
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    operation TEXT NOT NULL,
    source TEXT NOT NULL,
    destinations TEXT NOT NULL,
    subject TEXT,
    created_at INTEGER NOT NULL,
    raw BLOB NOT NULL
);

-- Refused sends and why, for the console and `sesame explain`.
CREATE TABLE rejections (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    operation TEXT NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    details TEXT NOT NULL
);
