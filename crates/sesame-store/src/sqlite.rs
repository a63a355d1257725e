//! The embedded backend: SQLite in the data directory, WAL mode, migrations
//! applied at open. Several processes (the server and operator commands) may
//! open the same file; SQLite serialises their writes.

use crate::{IdentityQuery, Insert, Listed, Result, Store, StoreError};
use async_trait::async_trait;
use sesame_model::{AccessKey, AccountId, Identity, IdentityKind, Scope};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row};
use std::path::Path;
use std::time::Duration;

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) `sesame.db` in `dir` and migrates it.
    pub async fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Corrupt(format!("cannot create data dir {}: {e}", dir.display()))
        })?;
        let opts = SqliteConnectOptions::new()
            .filename(dir.join("sesame.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a commit survives a process crash; fsync per checkpoint.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn kind_str(k: IdentityKind) -> &'static str {
    match k {
        IdentityKind::EmailAddress => "EmailAddress",
        IdentityKind::Domain => "Domain",
    }
}

fn encode(identity: &Identity) -> Result<String> {
    serde_json::to_string(identity).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode(row: &SqliteRow) -> Result<Identity> {
    let data: String = row.try_get("data")?;
    let mut identity: Identity =
        serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    identity.version = row.try_get("version")?;
    Ok(identity)
}

#[async_trait]
impl Store for SqliteStore {
    async fn put_access_key(&self, key: &AccessKey) -> Result<()> {
        sqlx::query(
            "INSERT INTO access_keys (access_key_id, secret_access_key, account_id, created_at)
             VALUES (?, ?, ?, ?)
             ON CONFLICT (access_key_id) DO UPDATE SET
               secret_access_key = excluded.secret_access_key,
               account_id = excluded.account_id",
        )
        .bind(&key.id)
        .bind(&key.secret)
        .bind(key.account.as_str())
        .bind(key.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_access_key(&self, id: &str) -> Result<Option<AccessKey>> {
        let row = sqlx::query(
            "SELECT access_key_id, secret_access_key, account_id, created_at
             FROM access_keys WHERE access_key_id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let account: String = r.try_get("account_id")?;
            Ok(AccessKey {
                id: r.try_get("access_key_id")?,
                secret: r.try_get("secret_access_key")?,
                account: AccountId::parse(&account).map_err(|e| StoreError::Corrupt(e.message))?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    async fn insert_identity(
        &self,
        scope: &Scope,
        identity: &Identity,
        limit: u32,
    ) -> Result<Insert> {
        let data = encode(identity)?;
        // BEGIN IMMEDIATE takes the write lock first, so the count and the
        // insert cannot interleave with another writer. Dropping `tx` before
        // commit (an error, or a cancelled request) rolls back.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let existing = sqlx::query(
            "SELECT data, version FROM identities WHERE account_id = ? AND region = ? AND name = ?",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(identity.name.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = existing {
            return Ok(Insert::Exists(Box::new(decode(&row)?)));
        }
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM identities WHERE account_id = ? AND region = ?",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if count >= i64::from(limit) {
            return Ok(Insert::LimitReached);
        }
        sqlx::query(
            "INSERT INTO identities (account_id, region, name, kind, verification_status,
               dkim_status, version, created_at, data)
             VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(identity.name.as_str())
        .bind(kind_str(identity.kind()))
        .bind(identity.verification_status.v1())
        .bind(identity.dkim.status.v1())
        .bind(identity.created_at)
        .bind(&data)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Insert::Inserted)
    }

    async fn get_identity(&self, scope: &Scope, name: &str) -> Result<Option<Identity>> {
        let row = sqlx::query(
            "SELECT data, version FROM identities WHERE account_id = ? AND region = ? AND name = ?",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(decode).transpose()
    }

    async fn get_identities(&self, scope: &Scope, names: &[String]) -> Result<Vec<Identity>> {
        let mut out = Vec::with_capacity(names.len());
        for chunk in names.chunks(200) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!(
                "SELECT data, version FROM identities WHERE account_id = ? AND region = ? AND name IN ({marks})"
            );
            // Only `?` placeholders are interpolated; values are bound.
            let mut q = sqlx::query(AssertSqlSafe(sql))
                .bind(scope.account.as_str())
                .bind(scope.region.as_str());
            for n in chunk {
                q = q.bind(n);
            }
            for row in q.fetch_all(&self.pool).await? {
                out.push(decode(&row)?);
            }
        }
        out.sort_by_key(|i| names.iter().position(|n| n == i.name.as_str()));
        Ok(out)
    }

    async fn update_identity(&self, scope: &Scope, identity: &Identity) -> Result<bool> {
        let data = encode(identity)?;
        let done = sqlx::query(
            "UPDATE identities SET data = ?, verification_status = ?, dkim_status = ?,
               version = version + 1
             WHERE account_id = ? AND region = ? AND name = ? AND version = ?",
        )
        .bind(&data)
        .bind(identity.verification_status.v1())
        .bind(identity.dkim.status.v1())
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(identity.name.as_str())
        .bind(identity.version)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_identity(&self, scope: &Scope, name: &str) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM identities WHERE account_id = ? AND region = ? AND name = ?")
                .bind(scope.account.as_str())
                .bind(scope.region.as_str())
                .bind(name)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_identities(
        &self,
        scope: &Scope,
        query: &IdentityQuery,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Listed>> {
        let mut sql = String::from(
            "SELECT seq, data, version FROM identities WHERE account_id = ? AND region = ? AND seq > ?",
        );
        if query.kind.is_some() {
            sql.push_str(" AND kind = ?");
        }
        if query.name_contains.is_some() {
            sql.push_str(" AND instr(name, ?) > 0");
        }
        if query.status.is_some() {
            sql.push_str(" AND verification_status = ?");
        }
        sql.push_str(" ORDER BY seq LIMIT ?");
        // The SQL is built from fixed fragments; values are bound.
        let mut q = sqlx::query(AssertSqlSafe(sql))
            .bind(scope.account.as_str())
            .bind(scope.region.as_str())
            .bind(after);
        if let Some(k) = query.kind {
            q = q.bind(kind_str(k));
        }
        if let Some(n) = &query.name_contains {
            q = q.bind(n.as_str());
        }
        if let Some(s) = query.status {
            q = q.bind(s.v1());
        }
        let rows = q.bind(i64::from(limit)).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(Listed {
                    seq: r.try_get("seq")?,
                    identity: decode(r)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        crate::conformance::run(std::sync::Arc::new(store)).await;
    }

    #[tokio::test]
    async fn data_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        crate::conformance::seed_one(&store).await;
        store.close().await;
        let again = SqliteStore::open(dir.path()).await.unwrap();
        crate::conformance::check_seeded(&again).await;
    }
}
