//! Sesame's SNS and event publishing: topics, subscriptions, published
//! messages and their per-subscription deliveries (a queue with leases,
//! claimed with `SKIP LOCKED` as `deliveries` is), the events publishing
//! reads, and its cursor.

use super::*;
use sesame_model::sns::MessageType;

fn topic_row(r: &PgRow) -> Result<(i64, Scope, Topic)> {
    let data: String = r.try_get("data")?;
    Ok((r.try_get("seq")?, scope_of(r)?, from_json(&data)?))
}

/// Inserts messages and their deliveries: one to a message's recipient,
/// or one to each confirmed subscription of its topic. A notification that
/// no subscription would receive is not stored. How many deliveries.
async fn insert_messages(
    tx: &mut sqlx::PgConnection,
    messages: &[TopicMessage],
    now: Millis,
) -> Result<u64> {
    if messages.is_empty() {
        return Ok(0);
    }
    let batch: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            serde_json::json!({
                "id": m.id, "kind": m.kind.as_str(), "topic": m.topic_arn,
                "subject": m.subject, "message": m.message, "at": m.created_at, "to": m.to,
            })
        })
        .collect();
    let batch = to_json(&batch)?;
    let deliveries = sqlx::query(
        "INSERT INTO sns_deliveries (message_id, subscription_arn, state, next_attempt_at,
           created_at, updated_at)
         SELECT m ->> 'id', s.arn, 'queued', $2, $2, $2
           FROM jsonb_array_elements($1::text::jsonb) m
           JOIN sns_subscriptions s ON s.topic_arn = m ->> 'topic' AND s.confirmed
          WHERE m ->> 'to' IS NULL
         UNION ALL
         SELECT m ->> 'id', m ->> 'to', 'queued', $2, $2, $2
           FROM jsonb_array_elements($1::text::jsonb) m WHERE m ->> 'to' IS NOT NULL",
    )
    .bind(&batch)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if deliveries > 0 {
        sqlx::query(
            "INSERT INTO sns_messages (id, kind, topic_arn, subject, message, created_at, recipient)
             SELECT m ->> 'id', m ->> 'kind', m ->> 'topic', m ->> 'subject', m ->> 'message',
                    (m ->> 'at')::bigint, m ->> 'to'
               FROM jsonb_array_elements($1::text::jsonb) m
              WHERE EXISTS (SELECT 1 FROM sns_deliveries d WHERE d.message_id = m ->> 'id')
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&batch)
        .execute(&mut *tx)
        .await?;
    }
    Ok(deliveries)
}

impl PgStore {
    pub(super) async fn insert_topic(
        &self,
        scope: &Scope,
        topic: &Topic,
        limit: u32,
    ) -> Result<Created> {
        let mut tx = self.pool.begin().await?;
        identities::lock_scope(&mut tx, "sns_topics", scope).await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT seq FROM sns_topics WHERE arn = $1")
            .bind(&topic.arn)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Ok(Created::Exists);
        }
        if named::scope_is_full(&mut tx, "sns_topics", scope, limit).await? {
            return Ok(Created::LimitReached);
        }
        sqlx::query(
            "INSERT INTO sns_topics (account_id, region, name, arn, data)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(&topic.name)
        .bind(&topic.arn)
        .bind(to_json(topic)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Created::Created)
    }

    pub(super) async fn get_topic(&self, arn: &str) -> Result<Option<(Scope, Topic)>> {
        let row =
            sqlx::query("SELECT seq, account_id, region, data FROM sns_topics WHERE arn = $1")
                .bind(arn)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| topic_row(&r).map(|(_, s, t)| (s, t)))
            .transpose()
    }

    pub(super) async fn update_topic(&self, topic: &Topic) -> Result<bool> {
        let done = sqlx::query("UPDATE sns_topics SET data = $1 WHERE arn = $2")
            .bind(to_json(topic)?)
            .bind(&topic.arn)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn delete_topic(&self, arn: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM sns_topics WHERE arn = $1")
            .bind(arn)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sns_subscriptions WHERE topic_arn = $1")
            .bind(arn)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn list_topics(
        &self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Topic)>> {
        let rows = sqlx::query(
            "SELECT seq, account_id, region, data FROM sns_topics
             WHERE account_id = $1 AND region = $2 AND seq > $3 ORDER BY seq LIMIT $4",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| topic_row(r).map(|(seq, _, t)| (seq, t)))
            .collect()
    }

    pub(super) async fn insert_subscription(
        &self,
        scope: &Scope,
        sub: &Subscription,
        limit: u32,
        confirmation: Option<&TopicMessage>,
        now: Millis,
    ) -> Result<Created> {
        let mut tx = self.pool.begin().await?;
        // The topic's row lock: subscribers of one topic count one at a
        // time, and the topic cannot go meanwhile.
        let topic: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM sns_topics WHERE arn = $1 FOR UPDATE")
                .bind(&sub.topic_arn)
                .fetch_optional(&mut *tx)
                .await?;
        if topic.is_none() {
            return Ok(Created::Exists);
        }
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sns_subscriptions WHERE topic_arn = $1")
                .bind(&sub.topic_arn)
                .fetch_one(&mut *tx)
                .await?;
        if count >= i64::from(limit) {
            return Ok(Created::LimitReached);
        }
        sqlx::query(
            "INSERT INTO sns_subscriptions (arn, topic_arn, account_id, region, confirmed, data)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&sub.arn)
        .bind(&sub.topic_arn)
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(sub.confirmed)
        .bind(to_json(sub)?)
        .execute(&mut *tx)
        .await?;
        if let Some(m) = confirmation {
            insert_messages(&mut tx, std::slice::from_ref(m), now).await?;
        }
        tx.commit().await?;
        self.sns_queued.notify_one();
        Ok(Created::Created)
    }

    pub(super) async fn get_subscription(
        &self,
        arn: &str,
    ) -> Result<Option<(Scope, Subscription)>> {
        let row =
            sqlx::query("SELECT account_id, region, data FROM sns_subscriptions WHERE arn = $1")
                .bind(arn)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            let data: String = r.try_get("data")?;
            Ok((scope_of(&r)?, from_json(&data)?))
        })
        .transpose()
    }

    pub(super) async fn update_subscription(
        &self,
        sub: &Subscription,
        message: Option<&TopicMessage>,
        now: Millis,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("UPDATE sns_subscriptions SET confirmed = $1, data = $2 WHERE arn = $3")
                .bind(sub.confirmed)
                .bind(to_json(sub)?)
                .bind(&sub.arn)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if let Some(m) = message {
            insert_messages(&mut tx, std::slice::from_ref(m), now).await?;
        }
        tx.commit().await?;
        self.sns_queued.notify_one();
        Ok(true)
    }

    pub(super) async fn delete_subscription(
        &self,
        arn: &str,
        farewell: Option<&TopicMessage>,
        now: Millis,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM sns_subscriptions WHERE arn = $1")
            .bind(arn)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() > 0
            && let Some(m) = farewell
        {
            insert_messages(&mut tx, std::slice::from_ref(m), now).await?;
        }
        tx.commit().await?;
        self.sns_queued.notify_one();
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn list_subscriptions(
        &self,
        scope: &Scope,
        topic_arn: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Subscription)>> {
        let rows = sqlx::query(
            "SELECT seq, data FROM sns_subscriptions
             WHERE account_id = $1 AND region = $2 AND ($3::text IS NULL OR topic_arn = $3)
               AND seq > $4 ORDER BY seq LIMIT $5",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(topic_arn)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let data: String = r.try_get("data")?;
                Ok((r.try_get("seq")?, from_json(&data)?))
            })
            .collect()
    }

    pub(super) async fn publish_messages(
        &self,
        messages: &[TopicMessage],
        cursor: Option<(&str, i64)>,
        now: Millis,
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let deliveries = insert_messages(&mut tx, messages, now).await?;
        if let Some((name, seq)) = cursor {
            sqlx::query(
                "INSERT INTO cursors (name, seq) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
            )
            .bind(name)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        if deliveries > 0 {
            self.sns_queued.notify_one();
        }
        Ok(deliveries)
    }

    pub(super) async fn claim_topic_deliveries(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> Result<Vec<TopicDelivery>> {
        let mut tx = self.pool.begin().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "WITH due AS (
               SELECT id FROM sns_deliveries WHERE state = 'queued' AND next_attempt_at <= $2
               ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED),
             expired AS (
               SELECT id FROM sns_deliveries WHERE state = 'sending' AND lease_until < $2
               LIMIT $3 FOR UPDATE SKIP LOCKED),
             picked AS (SELECT id FROM due UNION ALL SELECT id FROM expired LIMIT $3)
             UPDATE sns_deliveries d SET state = 'sending', lease_until = $1, claimed_by = $4
             FROM picked WHERE d.id = picked.id
             RETURNING d.id",
        )
        .bind(lease_until)
        .bind(now)
        .bind(i64::from(limit))
        .bind(&self.node)
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let rows = sqlx::query(
            "SELECT d.id, d.attempts, m.id AS mid, m.kind, m.topic_arn, m.subject, m.message,
                    m.created_at, m.recipient, s.data AS sub
             FROM sns_deliveries d JOIN sns_messages m ON m.id = d.message_id
             LEFT JOIN sns_subscriptions s ON s.arn = d.subscription_arn
             WHERE d.id = ANY($1) ORDER BY d.id",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                let sub: Option<String> = r.try_get("sub")?;
                Ok(TopicDelivery {
                    id: r.try_get("id")?,
                    attempts: r.try_get::<i64, _>("attempts")?.clamp(0, u32::MAX as i64) as u32,
                    message: TopicMessage {
                        id: r.try_get("mid")?,
                        kind: MessageType::parse(&kind)
                            .ok_or_else(|| StoreError::Corrupt(format!("message kind {kind}")))?,
                        topic_arn: r.try_get("topic_arn")?,
                        subject: r.try_get("subject")?,
                        message: r.try_get("message")?,
                        created_at: r.try_get("created_at")?,
                        to: r.try_get("recipient")?,
                    },
                    subscription: sub.map(|s| from_json(&s)).transpose()?,
                })
            })
            .collect()
    }

    pub(super) async fn finish_topic_deliveries(
        &self,
        outcomes: &[(i64, TopicDeliveryOutcome)],
        now: Millis,
    ) -> Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::with_capacity(outcomes.len());
        let mut states = Vec::with_capacity(outcomes.len());
        let mut nexts = Vec::with_capacity(outcomes.len());
        let mut errors: Vec<Option<String>> = Vec::with_capacity(outcomes.len());
        for (id, o) in outcomes {
            let (state, next, error) = match o {
                TopicDeliveryOutcome::Delivered => ("delivered", now, None),
                TopicDeliveryOutcome::Retry { at, error } => ("queued", *at, Some(error.clone())),
                TopicDeliveryOutcome::Failed { error } => ("failed", now, Some(error.clone())),
            };
            ids.push(*id);
            states.push(state.to_owned());
            nexts.push(next);
            errors.push(error);
        }
        // One statement for the batch.
        sqlx::query(
            "UPDATE sns_deliveries d SET state = u.state, attempts = d.attempts + 1,
               next_attempt_at = u.next, lease_until = NULL, claimed_by = NULL,
               updated_at = $5, last_error = u.error
             FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[])
               AS u(id, state, next, error)
             WHERE d.id = u.id",
        )
        .bind(&ids)
        .bind(&states)
        .bind(&nexts)
        .bind(&errors)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// This node's claims only: another node's come back when their
    /// leases run out.
    pub(super) async fn requeue_topic_deliveries(&self, now: Millis) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE sns_deliveries SET state = 'queued', lease_until = NULL, claimed_by = NULL,
               next_attempt_at = $1
             WHERE state = 'sending' AND claimed_by = $2",
        )
        .bind(now)
        .bind(&self.node)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub(super) async fn next_topic_delivery_due(&self) -> Result<Option<Millis>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM sns_deliveries WHERE state = 'queued'",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    pub(super) async fn cursor(&self, name: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar::<_, i64>("SELECT seq FROM cursors WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub(super) async fn events_after(&self, seq: i64, limit: u32) -> Result<Vec<(i64, Event)>> {
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT seq, data FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(seq)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(s, d)| Ok((s, from_json(&d)?)))
            .collect()
    }
}
