//! Sesame's SNS and event publishing: topics, subscriptions, published
//! messages and their per-subscription deliveries (a queue with leases, as
//! `deliveries` is), the events publishing reads, its cursor, and the keys
//! Sesame makes for itself.

use super::*;
use sesame_model::sns::{
    MessageType, Subscription, Topic, TopicDelivery, TopicDeliveryOutcome, TopicMessage,
};

fn topic_row(r: &SqliteRow) -> Result<(i64, Scope, Topic)> {
    let scope = scope_from(r.get("account_id"), r.get("region"))?;
    Ok((r.get("seq"), scope, from_json(r.get("data"))?))
}

/// Inserts messages and their deliveries: one to a message's recipient,
/// or one to each confirmed subscription of its topic. A notification that
/// no subscription would receive is not stored. Two statements for the
/// whole batch, so that publishing holds the write lock briefly. How many
/// deliveries.
async fn insert_messages(
    tx: &mut sqlx::SqliteConnection,
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
         SELECT m.value ->> 'id', s.arn, 'queued', ?2, ?2, ?2
           FROM json_each(?1) m
           JOIN sns_subscriptions s ON s.topic_arn = m.value ->> 'topic' AND s.confirmed = 1
          WHERE m.value ->> 'to' IS NULL
         UNION ALL
         SELECT m.value ->> 'id', m.value ->> 'to', 'queued', ?2, ?2, ?2
           FROM json_each(?1) m WHERE m.value ->> 'to' IS NOT NULL",
    )
    .bind(&batch)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if deliveries > 0 {
        sqlx::query(
            "INSERT INTO sns_messages (id, kind, topic_arn, subject, message, created_at, recipient)
             SELECT m.value ->> 'id', m.value ->> 'kind', m.value ->> 'topic', m.value ->> 'subject',
                    m.value ->> 'message', m.value ->> 'at', m.value ->> 'to'
               FROM json_each(?1) m
              WHERE EXISTS (SELECT 1 FROM sns_deliveries d WHERE d.message_id = m.value ->> 'id')",
        )
        .bind(&batch)
        .execute(&mut *tx)
        .await?;
    }
    Ok(deliveries)
}

impl SqliteStore {
    pub(super) async fn insert_topic(
        &self,
        scope: &Scope,
        topic: &Topic,
        limit: u32,
    ) -> Result<Created> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT seq FROM sns_topics WHERE arn = ?")
            .bind(&topic.arn)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Ok(Created::Exists);
        }
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sns_topics WHERE account_id = ? AND region = ?",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if count >= i64::from(limit) {
            return Ok(Created::LimitReached);
        }
        sqlx::query(
            "INSERT INTO sns_topics (account_id, region, name, arn, data) VALUES (?, ?, ?, ?, ?)",
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
        let row = sqlx::query("SELECT seq, account_id, region, data FROM sns_topics WHERE arn = ?")
            .bind(arn)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| topic_row(&r).map(|(_, s, t)| (s, t)))
            .transpose()
    }

    pub(super) async fn update_topic(&self, topic: &Topic) -> Result<bool> {
        let done = sqlx::query("UPDATE sns_topics SET data = ? WHERE arn = ?")
            .bind(to_json(topic)?)
            .bind(&topic.arn)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn delete_topic(&self, arn: &str) -> Result<bool> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query("DELETE FROM sns_topics WHERE arn = ?")
            .bind(arn)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sns_subscriptions WHERE topic_arn = ?")
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
             WHERE account_id = ? AND region = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(after)
        .bind(limit)
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let topic: Option<i64> = sqlx::query_scalar("SELECT seq FROM sns_topics WHERE arn = ?")
            .bind(&sub.topic_arn)
            .fetch_optional(&mut *tx)
            .await?;
        if topic.is_none() {
            return Ok(Created::Exists);
        }
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sns_subscriptions WHERE topic_arn = ?")
                .bind(&sub.topic_arn)
                .fetch_one(&mut *tx)
                .await?;
        if count >= i64::from(limit) {
            return Ok(Created::LimitReached);
        }
        sqlx::query(
            "INSERT INTO sns_subscriptions (arn, topic_arn, account_id, region, confirmed, data)
             VALUES (?, ?, ?, ?, ?, ?)",
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
            sqlx::query("SELECT account_id, region, data FROM sns_subscriptions WHERE arn = ?")
                .bind(arn)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            Ok((
                scope_from(r.get("account_id"), r.get("region"))?,
                from_json(r.get("data"))?,
            ))
        })
        .transpose()
    }

    pub(super) async fn update_subscription(
        &self,
        sub: &Subscription,
        message: Option<&TopicMessage>,
        now: Millis,
    ) -> Result<bool> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let done =
            sqlx::query("UPDATE sns_subscriptions SET confirmed = ?, data = ? WHERE arn = ?")
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query("DELETE FROM sns_subscriptions WHERE arn = ?")
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
             WHERE account_id = ?1 AND region = ?2 AND (?3 IS NULL OR topic_arn = ?3)
               AND seq > ?4 ORDER BY seq LIMIT ?5",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(topic_arn)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.get("seq"), from_json(r.get("data"))?)))
            .collect()
    }

    pub(super) async fn publish_messages(
        &self,
        messages: &[TopicMessage],
        cursor: Option<(&str, i64)>,
        now: Millis,
    ) -> Result<u64> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let deliveries = insert_messages(&mut tx, messages, now).await?;
        if let Some((name, seq)) = cursor {
            sqlx::query(
                "INSERT INTO cursors (name, seq) VALUES (?, ?)
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE sns_deliveries SET state = 'sending', lease_until = ?1
             WHERE id IN (
               SELECT id FROM sns_deliveries WHERE state = 'queued' AND next_attempt_at <= ?2
               UNION ALL
               SELECT id FROM sns_deliveries WHERE state = 'sending' AND lease_until < ?2
               LIMIT ?3)
             RETURNING id",
        )
        .bind(lease_until)
        .bind(now)
        .bind(limit)
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
             WHERE d.id IN (SELECT value FROM json_each(?)) ORDER BY d.id",
        )
        .bind(to_json(&ids)?)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.get("kind");
                let sub: Option<String> = r.get("sub");
                Ok(TopicDelivery {
                    id: r.get("id"),
                    attempts: r.get::<i64, _>("attempts") as u32,
                    message: TopicMessage {
                        id: r.get("mid"),
                        kind: MessageType::parse(&kind)
                            .ok_or_else(|| StoreError::Corrupt(format!("message kind {kind}")))?,
                        topic_arn: r.get("topic_arn"),
                        subject: r.get("subject"),
                        message: r.get("message"),
                        created_at: r.get("created_at"),
                        to: r.get("recipient"),
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
        let batch: Vec<serde_json::Value> = outcomes
            .iter()
            .map(|(id, o)| {
                let (state, next, error) = match o {
                    TopicDeliveryOutcome::Delivered => ("delivered", now, None),
                    TopicDeliveryOutcome::Retry { at, error } => {
                        ("queued", *at, Some(error.as_str()))
                    }
                    TopicDeliveryOutcome::Failed { error } => ("failed", now, Some(error.as_str())),
                };
                serde_json::json!({"id": id, "state": state, "next": next, "error": error})
            })
            .collect();
        // One statement for the batch.
        sqlx::query(
            "UPDATE sns_deliveries SET state = j.value ->> 'state', attempts = attempts + 1,
               next_attempt_at = j.value ->> 'next', lease_until = NULL, updated_at = ?2,
               last_error = j.value ->> 'error'
             FROM json_each(?1) j WHERE sns_deliveries.id = j.value ->> 'id'",
        )
        .bind(to_json(&batch)?)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn requeue_topic_deliveries(&self, now: Millis) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE sns_deliveries SET state = 'queued', lease_until = NULL, next_attempt_at = ?
             WHERE state = 'sending'",
        )
        .bind(now)
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
            sqlx::query_scalar::<_, i64>("SELECT seq FROM cursors WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub(super) async fn events_after(&self, seq: i64, limit: u32) -> Result<Vec<(i64, Event)>> {
        let rows = sqlx::query("SELECT seq, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?")
            .bind(seq)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.get("seq"), from_json(r.get("data"))?)))
            .collect()
    }

    pub(super) async fn get_own_key(&self, name: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT data FROM own_keys WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub(super) async fn put_own_key(&self, name: &str, data: &str, now: Millis) -> Result<String> {
        sqlx::query(
            "INSERT INTO own_keys (name, data, created_at) VALUES (?, ?, ?)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(data)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT data FROM own_keys WHERE name = ?")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Each statement is its own short write: the writer thread goes on
    /// between them.
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

    /// One server uses a SQLite file, so its node is always `local`.
    pub(super) async fn take_lease(&self, name: &str, now: Millis, until: Millis) -> Result<bool> {
        let held: Option<String> = sqlx::query_scalar(crate::TAKE_LEASE)
            .bind(name)
            .bind("local")
            .bind(now)
            .bind(until)
            .fetch_optional(&self.pool)
            .await?;
        Ok(held.is_some())
    }

    pub(super) async fn release_lease(&self, name: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = ? AND holder = 'local'")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn get_setting(&self, name: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub(super) async fn put_setting(&self, name: &str, value: &str, now: Millis) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (name, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET value = ?2, updated_at = ?3",
        )
        .bind(name)
        .bind(value)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn record_events(&self, events: &[Event]) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for e in events {
            sqlx::query(
                "INSERT INTO events (account_id, region, message_id, kind, at, data)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(e.scope.account.as_str())
            .bind(e.scope.region.as_str())
            .bind(&e.message_id)
            .bind(e.kind.as_str())
            .bind(e.at)
            .bind(to_json(e)?)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
