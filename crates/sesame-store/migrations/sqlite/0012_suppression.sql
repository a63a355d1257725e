-- The account-level suppression list, per account and region; addresses
-- are stored lower-cased.
CREATE TABLE suppressed_destinations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    address TEXT NOT NULL,
    reason TEXT NOT NULL,
    last_update INTEGER NOT NULL,
    message_id TEXT,
    feedback_id TEXT,
    UNIQUE (account_id, region, address)
);
CREATE INDEX suppressed_destinations_time ON suppressed_destinations (account_id, region, last_update);
