-- Only unfinished deliveries are looked up by message (an operator's retry
-- or drop), so only they are indexed by it. A delivery finished as it is
-- born (capture) then writes no index entry, and the index stays as small
-- as the queue. Queries must spell the condition exactly so (or name one of
-- its two states) for SQLite to use this index.
DROP INDEX deliveries_message;
CREATE INDEX deliveries_message ON deliveries (message_id)
    WHERE state = 'queued' OR state = 'sending';
