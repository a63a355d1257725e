-- Configuration sets, scoped by account and region: one JSON document each.
CREATE TABLE configuration_sets (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (account_id, region, name)
);
