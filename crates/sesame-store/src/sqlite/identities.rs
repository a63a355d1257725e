//! Identities: one JSON document a row, with the columns lookups need.

use super::*;
use crate::kind_str;

pub(super) fn encode(identity: &Identity) -> Result<String> {
    serde_json::to_string(identity).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn decode(row: &SqliteRow) -> Result<Identity> {
    let data: String = row.try_get("data")?;
    let mut identity: Identity =
        serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    identity.version = row.try_get("version")?;
    Ok(identity)
}

impl SqliteStore {
    pub(super) async fn insert_identity(
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
        if scope_is_full(&mut tx, Scoped::Identities, scope, limit).await? {
            return Ok(Insert::LimitReached);
        }
        sqlx::query(
            "INSERT INTO identities (account_id, region, name, kind, verification_status,
               dkim_status, version, created_at, data, verify_token)
             VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(identity.name.as_str())
        .bind(kind_str(identity.kind()))
        .bind(identity.verification_status.as_str())
        .bind(identity.dkim.status.as_str())
        .bind(identity.created_at)
        .bind(&data)
        .bind(identity.email_link.as_ref().map(|l| l.token.as_str()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.cache.bump();
        Ok(Insert::Inserted)
    }

    pub(super) async fn get_identity(&self, scope: &Scope, name: &str) -> Result<Option<Identity>> {
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

    pub(super) async fn find_identity_by_link(
        &self,
        token: &str,
    ) -> Result<Option<(Scope, Identity)>> {
        let row = sqlx::query(
            "SELECT account_id, region, data, version FROM identities WHERE verify_token = ?",
        )
        .bind(token)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let account: String = r.try_get("account_id")?;
            let region: String = r.try_get("region")?;
            let scope = Scope::new(
                AccountId::parse(&account).map_err(|e| StoreError::Corrupt(e.message))?,
                Region::parse(&region).map_err(|e| StoreError::Corrupt(e.message))?,
            );
            Ok((scope, decode(&r)?))
        })
        .transpose()
    }

    pub(super) async fn get_identities(
        &self,
        scope: &Scope,
        names: &[String],
    ) -> Result<Vec<Arc<Identity>>> {
        let (mut out, misses, generation) = match self.cache.entries() {
            Some(g) => {
                let (hits, misses) = g.1.identities(scope, names);
                (hits, misses, Some(g.1.generation))
            }
            None => (vec![], names.to_vec(), None),
        };
        let mut read = Vec::with_capacity(misses.len());
        for chunk in misses.chunks(200) {
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
                read.push(Arc::new(decode(&row)?));
            }
        }
        if let Some(mut g) = generation.and_then(|n| self.cache.entries_since(n)) {
            g.1.put_identities(scope, &misses, &read);
        }
        out.extend(read);
        out.sort_by_key(|i| names.iter().position(|n| n == i.name.as_str()));
        Ok(out)
    }

    pub(super) async fn update_identity(&self, scope: &Scope, identity: &Identity) -> Result<bool> {
        let written = self
            .update_identities(&[(scope.clone(), identity.clone())])
            .await?;
        Ok(written[0])
    }

    pub(super) async fn update_identities(
        &self,
        identities: &[(Scope, Identity)],
    ) -> Result<Vec<bool>> {
        if identities.is_empty() {
            return Ok(vec![]);
        }
        let mut out = Vec::with_capacity(identities.len());
        let mut tx = self.pool.begin().await?;
        for (scope, identity) in identities {
            let done = sqlx::query(
                "UPDATE identities SET data = ?, verification_status = ?, dkim_status = ?,
                   verify_token = ?, version = version + 1
                 WHERE account_id = ? AND region = ? AND name = ? AND version = ?",
            )
            .bind(encode(identity)?)
            .bind(identity.verification_status.as_str())
            .bind(identity.dkim.status.as_str())
            .bind(identity.email_link.as_ref().map(|l| l.token.as_str()))
            .bind(scope.account.as_str())
            .bind(scope.region.as_str())
            .bind(identity.name.as_str())
            .bind(identity.version)
            .execute(&mut *tx)
            .await?;
            out.push(done.rows_affected() == 1);
        }
        tx.commit().await?;
        self.cache.bump();
        Ok(out)
    }

    pub(super) async fn list_all_identities(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Scope, Identity)>> {
        let rows = sqlx::query(
            "SELECT seq, account_id, region, data, version FROM identities
             WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("seq")?, scope_of(r)?, decode(r)?)))
            .collect()
    }

    pub(super) async fn dkim_key_by_token(&self, token: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT data, version FROM identities
             WHERE json_extract(data, '$.dkim.tokens[0]') = ?1
                OR json_extract(data, '$.dkim.tokens[1]') = ?1
                OR json_extract(data, '$.dkim.tokens[2]') = ?1
             LIMIT 1",
        )
        .bind(token)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(crate::published_dkim_key(decode(&row)?))
    }

    pub(super) async fn delete_identity(&self, scope: &Scope, name: &str) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM identities WHERE account_id = ? AND region = ? AND name = ?")
                .bind(scope.account.as_str())
                .bind(scope.region.as_str())
                .bind(name)
                .execute(&self.pool)
                .await?;
        self.cache.bump();
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn list_identities(
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
            q = q.bind(s.as_str());
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
