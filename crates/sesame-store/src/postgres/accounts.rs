//! Access keys, accounts, recorded rejections, deployment settings, own
//! keys and leases.

use super::*;

fn account_row(r: &PgRow) -> Result<Account> {
    let data: String = r.try_get("data")?;
    let mut a: Account = from_json(&data)?;
    a.version = r.try_get("version")?;
    Ok(a)
}

/// Takes the named lease for `holder` until `until`, or renews it: whether
/// `holder` holds it now.
pub(super) async fn take(
    pool: &PgPool,
    name: &str,
    holder: &str,
    now: Millis,
    until: Millis,
) -> Result<bool> {
    let held: Option<String> = sqlx::query_scalar(crate::TAKE_LEASE)
        .bind(name)
        .bind(holder)
        .bind(now)
        .bind(until)
        .fetch_optional(pool)
        .await?;
    Ok(held.is_some())
}

impl PgStore {
    pub(super) async fn put_access_key(&self, key: &AccessKey) -> Result<()> {
        sqlx::query(
            "INSERT INTO access_keys (access_key_id, secret_access_key, account_id, created_at)
             VALUES ($1, $2, $3, $4)
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

    pub(super) async fn get_access_key(&self, id: &str) -> Result<Option<AccessKey>> {
        let row = sqlx::query(
            "SELECT access_key_id, secret_access_key, account_id, created_at
             FROM access_keys WHERE access_key_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let account: String = r.try_get("account_id")?;
            Ok(AccessKey {
                id: r.try_get("access_key_id")?,
                secret: r.try_get("secret_access_key")?,
                account: sesame_model::AccountId::parse(&account)
                    .map_err(|e| StoreError::Corrupt(e.message))?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    pub(super) async fn get_account(&self, scope: &Scope) -> Result<Option<Account>> {
        let row =
            sqlx::query("SELECT data, version FROM accounts WHERE account_id = $1 AND region = $2")
                .bind(scope.account.as_str())
                .bind(scope.region.as_str())
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(account_row).transpose()
    }

    pub(super) async fn save_account(&self, scope: &Scope, account: &Account) -> Result<bool> {
        let data = to_json(account)?;
        let done = if account.version == 0 {
            sqlx::query(
                "INSERT INTO accounts (account_id, region, version, data) VALUES ($1, $2, 1, $3)
                 ON CONFLICT (account_id, region) DO NOTHING",
            )
            .bind(scope.account.as_str())
            .bind(scope.region.as_str())
            .bind(&data)
            .execute(&self.pool)
            .await?
        } else {
            sqlx::query(
                "UPDATE accounts SET data = $1, version = version + 1
                 WHERE account_id = $2 AND region = $3 AND version = $4",
            )
            .bind(&data)
            .bind(scope.account.as_str())
            .bind(scope.region.as_str())
            .bind(account.version)
            .execute(&self.pool)
            .await?
        };
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn list_accounts(
        &self,
        after: Option<&Scope>,
        limit: u32,
    ) -> Result<Vec<(Scope, Account)>> {
        let (a, r) = after
            .map(|s| (s.account.as_str(), s.region.as_str()))
            .unwrap_or(("", ""));
        let rows = sqlx::query(
            "SELECT account_id, region, data, version FROM accounts
             WHERE (account_id, region) > ($1, $2) ORDER BY account_id, region LIMIT $3",
        )
        .bind(a)
        .bind(r)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((scope_of(row)?, account_row(row)?)))
            .collect()
    }

    pub(super) async fn record_rejection(
        &self,
        scope: &Scope,
        rejection: &Rejection,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO rejections (account_id, region, created_at, operation, code, message,
               details, request_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(rejection.created_at)
        .bind(&rejection.operation)
        .bind(&rejection.rule)
        .bind(&rejection.message)
        .bind(to_json(rejection)?)
        .bind(&rejection.request_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn find_rejection(
        &self,
        request_id: &str,
    ) -> Result<Option<(Scope, Rejection)>> {
        let row = sqlx::query(
            "SELECT account_id, region, details FROM rejections WHERE request_id = $1 LIMIT 1",
        )
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let d: String = r.try_get("details")?;
            Ok((scope_of(&r)?, from_json(&d)?))
        })
        .transpose()
    }

    pub(super) async fn list_rejections(
        &self,
        scope: &Scope,
        limit: u32,
    ) -> Result<Vec<Rejection>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT details FROM rejections WHERE account_id = $1 AND region = $2
             ORDER BY seq DESC LIMIT $3",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|(d,)| from_json(d)).collect()
    }

    pub(super) async fn get_setting(&self, name: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub(super) async fn put_setting(&self, name: &str, value: &str, now: Millis) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (name, value, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET value = $2, updated_at = $3",
        )
        .bind(name)
        .bind(value)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn get_own_key(&self, name: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT data FROM own_keys WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Two nodes making their key at once store one; both get it.
    pub(super) async fn put_own_key(&self, name: &str, data: &str, now: Millis) -> Result<String> {
        sqlx::query(
            "INSERT INTO own_keys (name, data, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(data)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT data FROM own_keys WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub(super) async fn purge(&self, before: Millis, limit: u32) -> Result<crate::Purged> {
        let mut removed = [0; 7];
        for (n, sql) in removed.iter_mut().zip(crate::PURGE) {
            *n = sqlx::query(sql)
                .bind(before)
                .bind(i64::from(limit))
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(removed.into())
    }

    pub(super) async fn take_lease(&self, name: &str, now: Millis, until: Millis) -> Result<bool> {
        take(&self.pool, name, &self.node, now, until).await
    }

    pub(super) async fn release_lease(&self, name: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(&self.node)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
