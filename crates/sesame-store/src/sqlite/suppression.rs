//! The account-level suppression list.

use super::*;
use sesame_model::suppression::{Reason, SuppressedDestination, SuppressionQuery};

fn row(r: &SqliteRow) -> Result<(i64, SuppressedDestination)> {
    let reason: String = r.get("reason");
    Ok((
        r.get("seq"),
        SuppressedDestination {
            address: r.get("address"),
            reason: Reason::parse(&reason)
                .ok_or_else(|| StoreError::Corrupt(format!("suppression reason {reason}")))?,
            last_update: r.get("last_update"),
            message_id: r.get("message_id"),
            feedback_id: r.get("feedback_id"),
        },
    ))
}

impl SqliteStore {
    pub(super) async fn put_suppressed(
        &self,
        scope: &Scope,
        d: &SuppressedDestination,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO suppressed_destinations
               (account_id, region, address, reason, last_update, message_id, feedback_id)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (account_id, region, address) DO UPDATE SET
               reason = excluded.reason, last_update = excluded.last_update,
               message_id = excluded.message_id, feedback_id = excluded.feedback_id",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(&d.address)
        .bind(d.reason.as_str())
        .bind(d.last_update)
        .bind(&d.message_id)
        .bind(&d.feedback_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn get_suppressed(
        &self,
        scope: &Scope,
        address: &str,
    ) -> Result<Option<SuppressedDestination>> {
        let r = sqlx::query(
            "SELECT * FROM suppressed_destinations WHERE account_id = ? AND region = ? AND address = ?",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(address)
        .fetch_optional(&self.pool)
        .await?;
        r.map(|r| row(&r).map(|(_, d)| d)).transpose()
    }

    pub(super) async fn delete_suppressed(&self, scope: &Scope, address: &str) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM suppressed_destinations WHERE account_id = ? AND region = ? AND address = ?",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(address)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn list_suppressed(
        &self,
        scope: &Scope,
        q: &SuppressionQuery,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, SuppressedDestination)>> {
        let reasons: Vec<&str> = q.reasons.iter().map(|r| r.as_str()).collect();
        let rows = sqlx::query(
            "SELECT * FROM suppressed_destinations
             WHERE account_id = ?1 AND region = ?2 AND seq > ?3
               AND (?4 = '[]' OR reason IN (SELECT value FROM json_each(?4)))
               AND (?5 IS NULL OR last_update >= ?5) AND (?6 IS NULL OR last_update <= ?6)
             ORDER BY seq LIMIT ?7",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(after)
        .bind(to_json(&reasons)?)
        .bind(q.start)
        .bind(q.end)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row).collect()
    }

    pub(super) async fn suppressed_among(
        &self,
        scope: &Scope,
        addresses: &[String],
        reasons: &[Reason],
    ) -> Result<Vec<String>> {
        if addresses.is_empty() || reasons.is_empty() {
            return Ok(vec![]);
        }
        let keys: Vec<String> = addresses
            .iter()
            .map(|a| sesame_model::suppression::key(a))
            .collect();
        let reasons: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
        Ok(sqlx::query_scalar(
            "SELECT address FROM suppressed_destinations
             WHERE account_id = ? AND region = ?
               AND address IN (SELECT value FROM json_each(?))
               AND reason IN (SELECT value FROM json_each(?))",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(to_json(&keys)?)
        .bind(to_json(&reasons)?)
        .fetch_all(&self.pool)
        .await?)
    }
}
