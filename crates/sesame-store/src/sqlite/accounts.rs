//! Access keys, accounts (through the read cache) and recorded rejections.

use super::*;

impl SqliteStore {
    pub(super) async fn put_access_key(&self, key: &AccessKey) -> Result<()> {
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

    pub(super) async fn get_access_key(&self, id: &str) -> Result<Option<AccessKey>> {
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

    pub(super) async fn get_account(&self, scope: &Scope) -> Result<Option<Account>> {
        let generation = match self.cache.entries() {
            Some(g) => match g.1.account(scope) {
                Some(hit) => return Ok(hit),
                None => Some(g.1.generation),
            },
            None => None,
        };
        let found = self.read_account(scope).await?;
        if let Some(mut g) = generation.and_then(|n| self.cache.entries_since(n)) {
            g.1.put_account(scope, found.clone());
        }
        Ok(found)
    }

    pub(super) async fn save_account(&self, scope: &Scope, account: &Account) -> Result<bool> {
        let saved = self.write_account(scope, account).await?;
        self.cache.bump();
        Ok(saved)
    }

    pub(super) async fn record_rejection(
        &self,
        scope: &Scope,
        rejection: &Rejection,
    ) -> Result<()> {
        let details =
            serde_json::to_string(rejection).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO rejections (account_id, region, created_at, operation, code, message, details,
               request_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(rejection.created_at)
        .bind(&rejection.operation)
        .bind(&rejection.rule)
        .bind(&rejection.message)
        .bind(&details)
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
            "SELECT account_id, region, details FROM rejections WHERE request_id = ? LIMIT 1",
        )
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let d: String = r.try_get("details")?;
            Ok((super::messages::scope_of(&r)?, from_json(&d)?))
        })
        .transpose()
    }

    pub(super) async fn list_rejections(
        &self,
        scope: &Scope,
        limit: u32,
    ) -> Result<Vec<Rejection>> {
        let rows = sqlx::query(
            "SELECT details FROM rejections WHERE account_id = ? AND region = ?
             ORDER BY seq DESC LIMIT ?",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let d: String = r.try_get("details")?;
                serde_json::from_str(&d).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
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
             WHERE (account_id, region) > (?, ?) ORDER BY account_id, region LIMIT ?",
        )
        .bind(a)
        .bind(r)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let data: String = row.try_get("data")?;
                let mut acc: Account = from_json(&data)?;
                acc.version = row.try_get("version")?;
                Ok((super::messages::scope_of(row)?, acc))
            })
            .collect()
    }

    pub(super) async fn read_account(&self, scope: &Scope) -> Result<Option<Account>> {
        let row =
            sqlx::query("SELECT data, version FROM accounts WHERE account_id = ? AND region = ?")
                .bind(scope.account.as_str())
                .bind(scope.region.as_str())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            let data: String = r.try_get("data")?;
            let mut a: Account =
                serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            a.version = r.try_get("version")?;
            Ok(a)
        })
        .transpose()
    }

    pub(super) async fn write_account(&self, scope: &Scope, account: &Account) -> Result<bool> {
        let data =
            serde_json::to_string(account).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let done = if account.version == 0 {
            sqlx::query(
                "INSERT INTO accounts (account_id, region, version, data) VALUES (?, ?, 1, ?)
                 ON CONFLICT (account_id, region) DO NOTHING",
            )
            .bind(scope.account.as_str())
            .bind(scope.region.as_str())
            .bind(&data)
            .execute(&self.pool)
            .await?
        } else {
            sqlx::query(
                "UPDATE accounts SET data = ?, version = version + 1
                 WHERE account_id = ? AND region = ? AND version = ?",
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
}
