-- Only queued deliveries are indexed by message. A delivery in flight
-- (`sending`) is found by an operator's drop through `deliveries_sending`,
-- which holds only what is in flight, so a delivery handed off at
-- acceptance and finished by its first attempt (most of them) no longer
-- adds and removes an entry here. Queries must spell `state = 'queued'`
-- for SQLite to use this index.
DROP INDEX deliveries_message;
CREATE INDEX deliveries_message ON deliveries (message_id) WHERE state = 'queued';
