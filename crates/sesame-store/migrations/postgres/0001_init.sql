-- Sesame's schema on PostgreSQL: the same tables as SQLite's migrations
-- 0001-0016 arrive at, in PostgreSQL's types, plus what several nodes
-- sharing one database need: each scope's rate bucket in `quota_state`
-- (decided under its row lock), the node that claimed a delivery
-- (`claimed_by`), and named leases for background work (`leases`).
-- Moments are milliseconds since the epoch (BIGINT), as in SQLite.

CREATE TABLE access_keys (
    access_key_id TEXT PRIMARY KEY,
    secret_access_key TEXT NOT NULL,
    account_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE identities (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    verification_status TEXT NOT NULL,
    dkim_status TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    data TEXT NOT NULL,
    verify_token TEXT,
    UNIQUE (account_id, region, name)
);
CREATE INDEX identities_status ON identities (verification_status, dkim_status);
CREATE UNIQUE INDEX identities_verify_token ON identities (verify_token)
    WHERE verify_token IS NOT NULL;
CREATE INDEX identities_dkim_token0 ON identities (((data::jsonb) #>> '{dkim,tokens,0}'));
CREATE INDEX identities_dkim_token1 ON identities (((data::jsonb) #>> '{dkim,tokens,1}'));
CREATE INDEX identities_dkim_token2 ON identities (((data::jsonb) #>> '{dkim,tokens,2}'));

CREATE TABLE accounts (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    version BIGINT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, region)
);

-- Recipients counted toward the daily quota, per scope and minute.
CREATE TABLE send_ledger (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    minute BIGINT NOT NULL,
    recipients BIGINT NOT NULL,
    PRIMARY KEY (account_id, region, minute)
);

-- One row per scope that has sent: its send-rate bucket, and the row
-- every acceptance in the scope locks (FOR UPDATE) while it decides, so
-- that the quotas hold across nodes.
CREATE TABLE quota_state (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    bucket_at BIGINT,
    bucket_tokens DOUBLE PRECISION,
    PRIMARY KEY (account_id, region)
);

CREATE TABLE messages (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    operation TEXT NOT NULL,
    source TEXT NOT NULL,
    destinations TEXT NOT NULL,
    subject TEXT,
    created_at BIGINT NOT NULL,
    raw BYTEA NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE rejections (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    operation TEXT NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    details TEXT NOT NULL,
    request_id TEXT
);
CREATE INDEX rejections_scope ON rejections (account_id, region, seq);
CREATE INDEX rejections_by_request ON rejections (request_id) WHERE request_id IS NOT NULL;

CREATE TABLE templates (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (account_id, region, name)
);

CREATE TABLE cv_templates (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (account_id, region, name)
);

CREATE TABLE configuration_sets (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (account_id, region, name)
);

CREATE TABLE deliveries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    domain TEXT NOT NULL,
    recipients TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    claimed_by TEXT,
    accepted_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_error TEXT
);
CREATE INDEX deliveries_queued ON deliveries (next_attempt_at) WHERE state = 'queued';
CREATE INDEX deliveries_sending ON deliveries (lease_until) WHERE state = 'sending';
CREATE INDEX deliveries_message ON deliveries (message_id) WHERE state IN ('queued', 'sending');

CREATE TABLE events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    message_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX events_scope ON events (account_id, region, at);
CREATE INDEX events_message ON events (message_id);

CREATE TABLE sns_topics (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    arn TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL,
    UNIQUE (account_id, region, name)
);

CREATE TABLE sns_subscriptions (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    arn TEXT NOT NULL UNIQUE,
    topic_arn TEXT NOT NULL,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    confirmed BOOLEAN NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX sns_subscriptions_topic ON sns_subscriptions (topic_arn, confirmed);
CREATE INDEX sns_subscriptions_scope ON sns_subscriptions (account_id, region);

CREATE TABLE sns_messages (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    topic_arn TEXT NOT NULL,
    subject TEXT,
    message TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    recipient TEXT
);

CREATE TABLE sns_deliveries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id TEXT NOT NULL,
    subscription_arn TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    claimed_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_error TEXT
);
CREATE INDEX sns_deliveries_queued ON sns_deliveries (next_attempt_at) WHERE state = 'queued';
CREATE INDEX sns_deliveries_sending ON sns_deliveries (lease_until) WHERE state = 'sending';
CREATE INDEX sns_deliveries_message ON sns_deliveries (message_id);

CREATE TABLE cursors (
    name TEXT PRIMARY KEY,
    seq BIGINT NOT NULL
);
-- Event publishing starts with the first event.
INSERT INTO cursors (name, seq) VALUES ('event-publishing', 0);

CREATE TABLE own_keys (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE suppressed_destinations (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    address TEXT NOT NULL,
    reason TEXT NOT NULL,
    last_update BIGINT NOT NULL,
    message_id TEXT,
    feedback_id TEXT,
    UNIQUE (account_id, region, address)
);
CREATE INDEX suppressed_destinations_time
    ON suppressed_destinations (account_id, region, last_update);

CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Background work one node does at a time: the lease's holder and until
-- when it holds it. A lease that ran out is anyone's.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until BIGINT NOT NULL
);
