-- Event publishing starts after the events recorded before it existed:
-- its cursor is set here, once, rather than by the first publisher to run,
-- which could otherwise skip events recorded before its first look.
INSERT OR IGNORE INTO cursors (name, seq)
SELECT 'event-publishing', COALESCE(MAX(seq), 0) FROM events;
