-- The deployment's settings that every process using the store must share
-- (the server's, and the operator CLI's): for example, whether accounts
-- start in production (`--no-sandbox`). The server writes them at start.
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
