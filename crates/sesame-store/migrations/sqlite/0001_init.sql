-- Access keys: SigV4 credentials, each owned by one account.
CREATE TABLE access_keys (
    access_key_id TEXT PRIMARY KEY NOT NULL,
    secret_access_key TEXT NOT NULL,
    account_id TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Identities, scoped by account and region. `seq` orders listings and pages;
-- `data` holds the rest of the identity record as JSON.
CREATE TABLE identities (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    verification_status TEXT NOT NULL,
    dkim_status TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (account_id, region, name)
);
CREATE INDEX identities_status ON identities (verification_status, dkim_status);
