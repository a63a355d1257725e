-- Feedback: what each message's events carry (configuration set, tags,
-- header addresses), Sesame's SNS (topics, subscriptions, published
-- messages and their deliveries), how far event publishing has read the
-- events table, and keys Sesame makes for itself (the SNS signing key).
ALTER TABLE messages ADD COLUMN meta TEXT NOT NULL DEFAULT '{}';

CREATE TABLE sns_topics (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    arn TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL,
    UNIQUE (account_id, region, name)
);

-- `token` is the outstanding confirmation token, NULL once confirmed.
CREATE TABLE sns_subscriptions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    arn TEXT NOT NULL UNIQUE,
    topic_arn TEXT NOT NULL,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    confirmed INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX sns_subscriptions_topic ON sns_subscriptions (topic_arn, confirmed);
CREATE INDEX sns_subscriptions_scope ON sns_subscriptions (account_id, region);

-- A message published to a topic, kept while deliveries of it remain.
CREATE TABLE sns_messages (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    topic_arn TEXT NOT NULL,
    subject TEXT,
    message TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    recipient TEXT
);

-- One delivery per message and subscription: queued, sending (leased),
-- delivered or failed.
CREATE TABLE sns_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    subscription_arn TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_error TEXT
);
CREATE INDEX sns_deliveries_queued ON sns_deliveries (next_attempt_at) WHERE state = 'queued';
CREATE INDEX sns_deliveries_sending ON sns_deliveries (lease_until) WHERE state = 'sending';
CREATE INDEX sns_deliveries_message ON sns_deliveries (message_id);

-- How far a reader of the events table has got (`events.seq`).
CREATE TABLE cursors (
    name TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);

-- Keys Sesame makes for itself once and keeps: name → PEM.
CREATE TABLE own_keys (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
