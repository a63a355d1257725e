-- The outbound queue: one row per accepted message and recipient domain.
-- `state` is queued, sending, delivered or failed; `recipients` (JSON) are
-- the ones still to deliver. A `sending` row is claimed by a worker until
-- `lease_until`.
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    domain TEXT NOT NULL,
    recipients TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until INTEGER,
    accepted_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_error TEXT
);
-- Only unfinished deliveries are indexed for claiming: finishing one drops
-- it from an index instead of moving it within one.
CREATE INDEX deliveries_queued ON deliveries (next_attempt_at) WHERE state = 'queued';
CREATE INDEX deliveries_sending ON deliveries (lease_until) WHERE state = 'sending';
CREATE INDEX deliveries_message ON deliveries (message_id);

-- Delivery outcomes with SES's fields: Delivery, Bounce, Complaint.
-- `data` holds the event record as JSON.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    message_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX events_scope ON events (account_id, region, at);
CREATE INDEX events_message ON events (message_id);
