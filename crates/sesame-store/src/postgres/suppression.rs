//! The account-level suppression list.

use super::*;

fn row(r: &PgRow) -> Result<(i64, SuppressedDestination)> {
    let reason: String = r.try_get("reason")?;
    Ok((
        r.try_get("seq")?,
        SuppressedDestination {
            address: r.try_get("address")?,
            reason: Reason::parse(&reason)
                .ok_or_else(|| StoreError::Corrupt(format!("suppression reason {reason}")))?,
            last_update: r.try_get("last_update")?,
            message_id: r.try_get("message_id")?,
            feedback_id: r.try_get("feedback_id")?,
        },
    ))
}

impl PgStore {
    pub(super) async fn put_suppressed(
        &self,
        scope: &Scope,
        d: &SuppressedDestination,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO suppressed_destinations
               (account_id, region, address, reason, last_update, message_id, feedback_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
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
            "SELECT * FROM suppressed_destinations
             WHERE account_id = $1 AND region = $2 AND address = $3",
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
            "DELETE FROM suppressed_destinations
             WHERE account_id = $1 AND region = $2 AND address = $3",
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
        let reasons: Vec<String> = q.reasons.iter().map(|r| r.as_str().to_owned()).collect();
        let rows = sqlx::query(
            "SELECT * FROM suppressed_destinations
             WHERE account_id = $1 AND region = $2 AND seq > $3
               AND (cardinality($4::text[]) = 0 OR reason = ANY($4))
               AND ($5::bigint IS NULL OR last_update >= $5)
               AND ($6::bigint IS NULL OR last_update <= $6)
             ORDER BY seq LIMIT $7",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(after)
        .bind(&reasons)
        .bind(q.start)
        .bind(q.end)
        .bind(i64::from(limit))
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
        let reasons: Vec<String> = reasons.iter().map(|r| r.as_str().to_owned()).collect();
        Ok(sqlx::query_scalar(
            "SELECT address FROM suppressed_destinations
             WHERE account_id = $1 AND region = $2 AND address = ANY($3) AND reason = ANY($4)",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(&keys)
        .bind(&reasons)
        .fetch_all(&self.pool)
        .await?)
    }
}
