//! Identities: one JSON document a row, with the columns lookups need.

use super::*;
use crate::kind_str;

fn decode(row: &PgRow) -> Result<Identity> {
    let data: String = row.try_get("data")?;
    let mut identity: Identity = from_json(&data)?;
    identity.version = row.try_get("version")?;
    Ok(identity)
}

/// Serialises writers of one scope's rows for the length of a
/// transaction: a count-then-insert under a per-scope limit.
pub(super) async fn lock_scope(
    tx: &mut sqlx::PgConnection,
    what: &str,
    scope: &Scope,
) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("{what}/{}/{}", scope.account, scope.region))
        .execute(tx)
        .await?;
    Ok(())
}

impl PgStore {
    pub(super) async fn insert_identity(
        &self,
        scope: &Scope,
        identity: &Identity,
        limit: u32,
    ) -> Result<Insert> {
        let data = to_json(identity)?;
        let mut tx = self.pool.begin().await?;
        lock_scope(&mut tx, "identities", scope).await?;
        let existing = sqlx::query(
            "SELECT data, version FROM identities
             WHERE account_id = $1 AND region = $2 AND name = $3",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(identity.name.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = existing {
            return Ok(Insert::Exists(Box::new(decode(&row)?)));
        }
        if named::scope_is_full(&mut tx, "identities", scope, limit).await? {
            return Ok(Insert::LimitReached);
        }
        sqlx::query(
            "INSERT INTO identities (account_id, region, name, kind, verification_status,
               dkim_status, version, created_at, data, verify_token)
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $9)",
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
        Ok(Insert::Inserted)
    }

    pub(super) async fn get_identity(&self, scope: &Scope, name: &str) -> Result<Option<Identity>> {
        let row = sqlx::query(
            "SELECT data, version FROM identities
             WHERE account_id = $1 AND region = $2 AND name = $3",
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
            "SELECT account_id, region, data, version FROM identities WHERE verify_token = $1",
        )
        .bind(token)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((scope_of(&r)?, decode(&r)?))).transpose()
    }

    pub(super) async fn get_identities(
        &self,
        scope: &Scope,
        names: &[String],
    ) -> Result<Vec<Arc<Identity>>> {
        if names.is_empty() {
            return Ok(vec![]);
        }
        let rows = sqlx::query(
            "SELECT data, version FROM identities
             WHERE account_id = $1 AND region = $2 AND name = ANY($3)",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(names)
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows
            .iter()
            .map(|r| decode(r).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|i| names.iter().position(|n| n == i.name.as_str()));
        Ok(out)
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
                "UPDATE identities SET data = $1, verification_status = $2, dkim_status = $3,
                   verify_token = $4, version = version + 1
                 WHERE account_id = $5 AND region = $6 AND name = $7 AND version = $8",
            )
            .bind(to_json(identity)?)
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
        Ok(out)
    }

    pub(super) async fn list_all_identities(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Scope, Identity)>> {
        let rows = sqlx::query(
            "SELECT seq, account_id, region, data, version FROM identities
             WHERE seq > $1 ORDER BY seq LIMIT $2",
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
             WHERE (data::jsonb) #>> '{dkim,tokens,0}' = $1
                OR (data::jsonb) #>> '{dkim,tokens,1}' = $1
                OR (data::jsonb) #>> '{dkim,tokens,2}' = $1
             LIMIT 1",
        )
        .bind(token)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(crate::published_dkim_key(decode(&row)?))
    }

    pub(super) async fn delete_identity(&self, scope: &Scope, name: &str) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM identities WHERE account_id = $1 AND region = $2 AND name = $3",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn list_identities(
        &self,
        scope: &Scope,
        query: &IdentityQuery,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Listed>> {
        let mut sql = Sql::new("SELECT seq, data, version FROM identities WHERE ");
        sql.push("account_id = ? AND region = ? AND seq > ?");
        if query.kind.is_some() {
            sql.push(" AND kind = ?");
        }
        if query.name_contains.is_some() {
            sql.push(" AND strpos(name, ?) > 0");
        }
        if query.status.is_some() {
            sql.push(" AND verification_status = ?");
        }
        sql.push(" ORDER BY seq LIMIT ?");
        // The SQL is built from fixed fragments; values are bound.
        let mut q = sqlx::query(AssertSqlSafe(sql.text))
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
