//! The delivery queue and its events: claims (`FOR UPDATE SKIP LOCKED`,
//! with leases), outcomes, the operator's retries and drops.

use super::*;
use bytes::Bytes;
use std::collections::HashMap;

/// Records events, numbered in commit order: the lock is held from here to
/// the transaction's end, so call this last before committing.
pub(super) async fn insert_events(tx: &mut sqlx::PgConnection, events: &[Event]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut accounts = Vec::with_capacity(events.len());
    let mut regions = Vec::with_capacity(events.len());
    let mut messages = Vec::with_capacity(events.len());
    let mut kinds = Vec::with_capacity(events.len());
    let mut ats = Vec::with_capacity(events.len());
    let mut data = Vec::with_capacity(events.len());
    for e in events {
        accounts.push(e.scope.account.as_str().to_owned());
        regions.push(e.scope.region.as_str().to_owned());
        messages.push(e.message_id.clone());
        kinds.push(e.kind.as_str().to_owned());
        ats.push(e.at);
        data.push(to_json(e)?);
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(EVENTS_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO events (account_id, region, message_id, kind, at, data)
         SELECT a, r, m, k, t, d FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                              $6::text[]) WITH ORDINALITY AS e(a, r, m, k, t, d, n)
         ORDER BY n",
    )
    .bind(&accounts)
    .bind(&regions)
    .bind(&messages)
    .bind(&kinds)
    .bind(&ats)
    .bind(&data)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl PgStore {
    pub(super) async fn claim_deliveries(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> Result<Vec<QueuedDelivery>> {
        let limit = i64::from(limit);
        let mut tx = self.pool.begin().await?;
        // Due deliveries and expired leases, each through its partial
        // index; rows another node is claiming right now are skipped.
        let ids: Vec<i64> = sqlx::query_scalar(
            "WITH due AS (
               SELECT id FROM deliveries WHERE state = 'queued' AND next_attempt_at <= $2
               ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED),
             expired AS (
               SELECT id FROM deliveries WHERE state = 'sending' AND lease_until < $2
               LIMIT $3 FOR UPDATE SKIP LOCKED),
             picked AS (SELECT id FROM due UNION ALL SELECT id FROM expired LIMIT $3)
             UPDATE deliveries d SET state = 'sending', lease_until = $1, updated_at = $2,
               claimed_by = $4
             FROM picked WHERE d.id = picked.id
             RETURNING d.id",
        )
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .bind(&self.node)
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let rows = sqlx::query(
            "SELECT d.id, d.message_id, d.account_id, d.region, d.domain, d.recipients,
                    d.attempts, d.accepted_at, m.source, m.destinations, m.subject, m.raw,
                    m.operation, m.meta
             FROM deliveries d JOIN messages m ON m.id = d.message_id
             WHERE d.id = ANY($1)
             ORDER BY d.next_attempt_at",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        // Deliveries of one message (one a domain) share its bytes.
        let mut raws: HashMap<String, Bytes> = HashMap::new();
        for r in &rows {
            let message_id: String = r.try_get("message_id")?;
            let raw = match raws.get(&message_id) {
                Some(raw) => raw.clone(),
                None => {
                    let raw = Bytes::from(r.try_get::<Vec<u8>, _>("raw")?);
                    raws.insert(message_id.clone(), raw.clone());
                    raw
                }
            };
            let recipients: String = r.try_get("recipients")?;
            let destinations: String = r.try_get("destinations")?;
            let meta: String = r.try_get("meta")?;
            out.push(QueuedDelivery {
                id: r.try_get("id")?,
                scope: scope_of(r)?,
                message_id,
                source: r.try_get("source")?,
                destinations: from_json(&destinations)?,
                subject: r.try_get("subject")?,
                domain: r.try_get("domain")?,
                recipients: from_json(&recipients)?,
                attempts: r.try_get::<i64, _>("attempts")?.clamp(0, u32::MAX as i64) as u32,
                accepted_at: r.try_get("accepted_at")?,
                raw,
                operation: r.try_get("operation")?,
                meta: from_json(&meta)?,
            });
        }
        // A delivery whose message is gone ends.
        if out.len() < ids.len() {
            sqlx::query(
                "UPDATE deliveries SET state = 'failed', lease_until = NULL, claimed_by = NULL,
                   last_error = 'the message was deleted before delivery'
                 WHERE id = ANY($1)
                   AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = deliveries.message_id)",
            )
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    pub(super) async fn finish_deliveries(
        &self,
        updates: Vec<DeliveryUpdate>,
        events: Vec<Event>,
    ) -> Result<()> {
        let n = updates.len();
        let (mut ids, mut states, mut ats) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let mut recipients: Vec<Option<String>> = Vec::with_capacity(n);
        let mut errors: Vec<Option<String>> = Vec::with_capacity(n);
        let mut retried = false;
        for u in &updates {
            match u {
                DeliveryUpdate::Finished { id, failed, at } => {
                    ids.push(*id);
                    states.push(if *failed { "failed" } else { "delivered" }.to_owned());
                    ats.push(*at);
                    recipients.push(None);
                    errors.push(None);
                }
                DeliveryUpdate::Retry {
                    id,
                    recipients: r,
                    at,
                    error,
                } => {
                    ids.push(*id);
                    states.push("queued".to_owned());
                    ats.push(*at);
                    recipients.push(Some(to_json(r)?));
                    errors.push(Some(error.clone()));
                    retried = true;
                }
            }
        }
        let mut tx = self.pool.begin().await?;
        if !ids.is_empty() {
            sqlx::query(
                "UPDATE deliveries d SET state = u.state, attempts = d.attempts + 1,
                   lease_until = NULL, claimed_by = NULL, updated_at = u.at,
                   recipients = COALESCE(u.recipients, d.recipients),
                   next_attempt_at = CASE WHEN u.state = 'queued' THEN u.at
                                          ELSE d.next_attempt_at END,
                   last_error = COALESCE(u.error, d.last_error)
                 FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[])
                   AS u(id, state, at, recipients, error)
                 WHERE d.id = u.id",
            )
            .bind(&ids)
            .bind(&states)
            .bind(&ats)
            .bind(&recipients)
            .bind(&errors)
            .execute(&mut *tx)
            .await?;
        }
        insert_events(&mut tx, &events).await?;
        tx.commit().await?;
        if retried {
            self.queued.notify_one();
        }
        Ok(())
    }

    /// This node's claims only: another node's come back when their
    /// leases run out.
    pub(super) async fn requeue_in_flight(&self, now: Millis) -> Result<u64> {
        let n = sqlx::query(
            "UPDATE deliveries SET state = 'queued', lease_until = NULL, claimed_by = NULL,
               next_attempt_at = $1
             WHERE state = 'sending' AND claimed_by = $2",
        )
        .bind(now)
        .bind(&self.node)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n)
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
            "SELECT MIN(accepted_at), MIN(next_attempt_at) FILTER (WHERE state = 'queued')
             FROM deliveries WHERE state IN ('queued', 'sending')",
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
                    next_attempt_at, accepted_at, last_error,
                    CASE WHEN state = 'sending' THEN claimed_by END AS claimed_by
             FROM deliveries WHERE $1::text IS NULL OR state = $1 ORDER BY id LIMIT $2",
        )
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
                    claimed_by: r.try_get("claimed_by")?,
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
        Ok((count(queued), count(sending)))
    }

    pub(super) async fn retry_message(&self, message_id: &str, now: Millis) -> Result<u64> {
        let n = sqlx::query(
            "UPDATE deliveries SET next_attempt_at = $1, updated_at = $1
             WHERE message_id = $2 AND state = 'queued'",
        )
        .bind(now)
        .bind(message_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        self.queued.notify_one();
        Ok(n)
    }

    pub(super) async fn drop_message(&self, message_id: &str, now: Millis) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE deliveries SET state = 'failed', lease_until = NULL, claimed_by = NULL,
               updated_at = $1, last_error = 'dropped by an operator'
             WHERE message_id = $2 AND state IN ('queued', 'sending')",
        )
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
             WHERE ($1::text IS NULL OR account_id = $1) AND ($2::text IS NULL OR region = $2)
               AND ($3::text IS NULL OR message_id = $3) AND ($4::text IS NULL OR kind = $4)
             ORDER BY seq DESC LIMIT $5",
        )
        .bind(account)
        .bind(region)
        .bind(filter.message_id.as_deref())
        .bind(filter.kind.map(|k| k.as_str()))
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|(d,)| from_json(d)).collect()
    }
}
