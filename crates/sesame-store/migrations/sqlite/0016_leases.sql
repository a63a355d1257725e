-- Background work one holder does at a time (see Store::take_lease). On
-- SQLite one server uses the data directory, so the leases matter only
-- for the rules being the same on both backends.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until INTEGER NOT NULL
);
