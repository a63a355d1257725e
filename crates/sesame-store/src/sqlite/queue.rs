//! The delivery queue and its events: claims, outcomes, the operator's retries and drops.

use super::*;

/// An operator's retry of a message's queued deliveries. Its condition on
/// `state` lets SQLite search the partial index `deliveries_message`.
pub(super) const RETRY_MESSAGE: &str = "UPDATE deliveries SET next_attempt_at = ?, updated_at = ?
     WHERE message_id = ? AND state = 'queued'";

/// An operator's drop of a message's unfinished deliveries: the queued
/// ones through the partial index `deliveries_message`, the ones in flight
/// through `deliveries_sending` (which holds only what is in flight).
pub(super) const DROP_MESSAGE: &str = "UPDATE deliveries SET state = 'failed', lease_until = NULL,
       updated_at = ?1, last_error = 'dropped by an operator'
     WHERE id IN (
       SELECT id FROM deliveries WHERE message_id = ?2 AND state = 'queued'
       UNION ALL
       SELECT id FROM deliveries WHERE state = 'sending' AND message_id = ?2)";

impl SqliteStore {
    pub(super) fn queue_signal(&self) -> Arc<Notify> {
        self.queued.clone()
    }

    pub(super) fn deliver_on_acceptance(&self, hook: Arc<dyn AcceptanceDelivery>) {
        self.on_acceptance.set(hook);
    }

    pub(super) async fn claim_deliveries(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> Result<Vec<QueuedDelivery>> {
        let (mut claimed, rest) = self.handoff.take(now, lease_until, limit);
        if rest > 0 {
            let (reply, answer) = oneshot::channel();
            let found = self
                .submit(
                    Job::Queue(QueueJob::Claim {
                        now,
                        lease_until,
                        limit: rest,
                        reply,
                    }),
                    answer,
                )
                .await;
            match found {
                Ok(found) => claimed.extend(found),
                // Those already taken are claimed in the database; they
                // must not be lost with the error.
                Err(e) if claimed.is_empty() => return Err(e),
                Err(e) => tracing::warn!(error = %e, "could not search the queue"),
            }
        }
        Ok(claimed)
    }

    pub(super) async fn finish_deliveries(
        &self,
        updates: Vec<DeliveryUpdate>,
        events: Vec<Event>,
    ) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.submit(
            Job::Queue(QueueJob::Finish {
                updates,
                events,
                reply,
            }),
            answer,
        )
        .await
    }

    pub(super) async fn requeue_in_flight(&self, now: Millis) -> Result<u64> {
        // Every claim ends, the handed-off ones included.
        self.handoff.clear();
        let n = sqlx::query(
            "UPDATE deliveries SET state = 'queued', lease_until = NULL, next_attempt_at = ?
             WHERE state = 'sending'",
        )
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        // The writer did not see this change: the next claim searches.
        self.handoff.due_at(now);
        Ok(n)
    }

    pub(super) fn next_delivery_due_hint(&self) -> Option<Option<Millis>> {
        self.handoff.next_due()
    }

    pub(super) async fn next_delivery_due(&self) -> Result<Option<Millis>> {
        Ok(
            sqlx::query_scalar(
                "SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'queued'",
            )
            .fetch_one(&self.pool)
            .await?,
        )
    }

    pub(super) async fn queue_summary(&self) -> Result<QueueSummary> {
        let counts: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
                .fetch_all(&self.pool)
                .await?;
        let mut s = crate::summary_of(counts)?;
        let (oldest, next): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT MIN(a), MIN(n) FROM (
               SELECT MIN(accepted_at) AS a, MIN(next_attempt_at) AS n
               FROM deliveries WHERE state = 'queued'
               UNION ALL
               SELECT MIN(accepted_at), NULL FROM deliveries WHERE state = 'sending')",
        )
        .fetch_one(&self.pool)
        .await?;
        s.oldest_unfinished = oldest;
        s.next_attempt = next;
        Ok(s)
    }

    pub(super) async fn list_queue(
        &self,
        state: Option<DeliveryState>,
        limit: u32,
    ) -> Result<Vec<QueueEntry>> {
        let rows = sqlx::query(
            "SELECT id, message_id, account_id, region, domain, recipients, state, attempts,
                    next_attempt_at, accepted_at, last_error
             FROM deliveries WHERE ? IS NULL OR state = ? ORDER BY id LIMIT ?",
        )
        .bind(state.map(|s| s.as_str()))
        .bind(state.map(|s| s.as_str()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let recipients: String = r.try_get("recipients")?;
                let state: String = r.try_get("state")?;
                Ok(QueueEntry {
                    id: r.try_get("id")?,
                    scope: scope_of(r)?,
                    message_id: r.try_get("message_id")?,
                    domain: r.try_get("domain")?,
                    recipients: from_json(&recipients)?,
                    state: DeliveryState::parse(&state)
                        .ok_or_else(|| StoreError::Corrupt(format!("delivery state {state}")))?,
                    attempts: r.try_get::<i64, _>("attempts")?.clamp(0, u32::MAX as i64) as u32,
                    next_attempt_at: r.try_get("next_attempt_at")?,
                    accepted_at: r.try_get("accepted_at")?,
                    last_error: r.try_get("last_error")?,
                    claimed_by: None,
                })
            })
            .collect()
    }

    pub(super) async fn queue_depth(&self) -> Result<(u64, u64)> {
        let (queued, sending): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 'queued'),
                    (SELECT COUNT(*) FROM deliveries WHERE state = 'sending')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((queued.max(0) as u64, sending.max(0) as u64))
    }

    pub(super) async fn retry_message(&self, message_id: &str, now: Millis) -> Result<u64> {
        let n = sqlx::query(RETRY_MESSAGE)
            .bind(now)
            .bind(now)
            .bind(message_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        // The writer did not see this change: the next claim searches.
        self.handoff.due_at(now);
        self.queued.notify_one();
        Ok(n)
    }

    pub(super) async fn drop_message(&self, message_id: &str, now: Millis) -> Result<u64> {
        Ok(sqlx::query(DROP_MESSAGE)
            .bind(now)
            .bind(message_id)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    pub(super) async fn list_events(&self, filter: &EventFilter) -> Result<Vec<Event>> {
        let (account, region) = match &filter.scope {
            Some(s) => (Some(s.account.as_str()), Some(s.region.as_str())),
            None => (None, None),
        };
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT data FROM events
             WHERE (? IS NULL OR account_id = ?) AND (? IS NULL OR region = ?)
               AND (? IS NULL OR message_id = ?) AND (? IS NULL OR kind = ?)
             ORDER BY seq DESC LIMIT ?",
        )
        .bind(account)
        .bind(account)
        .bind(region)
        .bind(region)
        .bind(filter.message_id.as_deref())
        .bind(filter.message_id.as_deref())
        .bind(filter.kind.map(|k| k.as_str()))
        .bind(filter.kind.map(|k| k.as_str()))
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|(d,)| from_json(d)).collect()
    }
}
