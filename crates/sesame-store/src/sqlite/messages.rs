//! Accepted messages (the local mailbox), the quota ledger's reads and the sending statistics.

use super::*;

pub(super) fn scope_of(r: &SqliteRow) -> Result<Scope> {
    scope_from(r.try_get("account_id")?, r.try_get("region")?)
}

pub(super) fn decode_message(r: &SqliteRow) -> Result<StoredMessage> {
    let destinations: String = r.try_get("destinations")?;
    Ok(StoredMessage {
        scope: scope_of(r)?,
        message: NewMessage {
            id: r.try_get("id")?,
            operation: r.try_get("operation")?,
            source: r.try_get("source")?,
            destinations: serde_json::from_str(&destinations)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            subject: r.try_get("subject")?,
            created_at: r.try_get("created_at")?,
            raw: r.try_get("raw")?,
            meta: from_json(r.try_get("meta")?)?,
            events: vec![],
        },
    })
}

impl SqliteStore {
    pub(super) async fn sent_last_24h(&self, scope: &Scope, now: Millis) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(recipients), 0) FROM send_ledger
             WHERE account_id = ? AND region = ? AND minute > ?",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(sesame_model::quota::minute_of(now) - sesame_model::quota::DAY_MINUTES)
        .fetch_one(&self.pool)
        .await?;
        Ok(n.max(0) as u64)
    }

    pub(super) async fn send_statistics(
        &self,
        scope: &Scope,
        since: Millis,
    ) -> Result<Vec<SendStatPoint>> {
        let sent: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT (minute / 15) * 15 AS bucket, SUM(recipients) FROM send_ledger
             WHERE account_id = ? AND region = ? AND minute >= ?
             GROUP BY bucket ORDER BY bucket",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(since / 60_000)
        .fetch_all(&self.pool)
        .await?;
        let outcomes: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT (at / 900000) * 900000 AS bucket, kind,
                    SUM(json_array_length(data, '$.recipients'))
             FROM events WHERE account_id = ? AND region = ? AND at >= ?
               AND kind IN ('Bounce', 'Complaint')
             GROUP BY bucket, kind",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        Ok(crate::stat_points(sent, outcomes))
    }

    pub(super) async fn accept_message(
        &self,
        scope: &Scope,
        message: &NewMessage,
        quota: &QuotaCheck,
    ) -> Result<Acceptance> {
        let (reply, answer) = oneshot::channel();
        self.submit(
            Job::Accept(Box::new(AcceptJob {
                scope: scope.clone(),
                message: message.clone(),
                quota: *quota,
                reply,
            })),
            answer,
        )
        .await
    }

    pub(super) async fn list_messages(&self, filter: &MessageFilter) -> Result<Vec<StoredMessage>> {
        let mut sql = String::from(
            "SELECT id, account_id, region, operation, source, destinations, subject, created_at, raw,
                    meta
             FROM messages WHERE 1 = 1",
        );
        if filter.recipient.is_some() {
            sql.push_str(" AND EXISTS (SELECT 1 FROM json_each(messages.destinations) WHERE lower(json_each.value) = lower(?))");
        }
        if filter.sender.is_some() {
            sql.push_str(" AND lower(source) = lower(?)");
        }
        if filter.account.is_some() {
            sql.push_str(" AND account_id = ?");
        }
        sql.push_str(" ORDER BY seq DESC LIMIT ?");
        // The SQL is built from fixed fragments; values are bound.
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for v in [&filter.recipient, &filter.sender, &filter.account]
            .into_iter()
            .flatten()
        {
            q = q.bind(v.as_str());
        }
        let rows = q
            .bind(i64::from(filter.limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_message).collect()
    }

    pub(super) async fn get_message(&self, id: &str) -> Result<Option<StoredMessage>> {
        let row = sqlx::query(
            "SELECT id, account_id, region, operation, source, destinations, subject, created_at, raw,
                    meta
             FROM messages WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(decode_message).transpose()
    }

    pub(super) async fn clear_messages(&self) -> Result<u64> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Queue(QueueJob::Clear { reply }), answer)
            .await
    }
}
