//! Acceptances, group-committed: one writer task per node takes the
//! acceptances waiting for it into one transaction, so that durability
//! costs one commit per batch, not per message. In that transaction each
//! scope's `quota_state` row is locked (in a fixed order, so that nodes
//! never deadlock), its last 24 hours are read from `send_ledger`, and each
//! message is decided under `sesame_model::quota`'s rules: concurrent
//! senders on any number of nodes never together exceed a quota.
//!
//! A batch that fails is tried again one acceptance at a time, so that one
//! bad message fails alone. Also here: the local mailbox's reads and the
//! sending statistics.

use super::*;
use sesame_model::delivery::group_by_domain;
use sesame_model::quota::{DAY_MINUTES, QuotaState, minute_of};
use std::collections::HashMap;

/// The most acceptances in one transaction.
const MAX_BATCH: usize = 256;

/// One acceptance waiting for the writer.
pub(super) struct AcceptJob {
    scope: Scope,
    message: NewMessage,
    quota: QuotaCheck,
    reply: oneshot::Sender<Result<Acceptance>>,
}

type Hook = Arc<RwLock<Option<Arc<dyn AcceptanceDelivery>>>>;

/// Starts the writer task; it ends once every sender is gone and the jobs
/// already sent are answered.
pub(super) fn spawn(
    pool: PgPool,
    queued: Arc<Notify>,
    hook: Hook,
) -> (mpsc::Sender<AcceptJob>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
    (tx, tokio::spawn(run(pool, rx, queued, hook)))
}

async fn run(pool: PgPool, mut rx: mpsc::Receiver<AcceptJob>, queued: Arc<Notify>, hook: Hook) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let batch: Vec<AcceptJob> = std::mem::take(&mut jobs);
        let hook = hook.read().ok().and_then(|h| h.clone());
        let hook = hook.as_deref();
        match write(&pool, &batch, hook).await {
            Ok(done) => finish(batch, done, &queued, hook),
            Err(e) if batch.len() > 1 => {
                tracing::warn!(error = %e, size = batch.len(),
                    "a batch of acceptances failed; trying each alone");
                for job in batch {
                    match write(&pool, std::slice::from_ref(&job), hook).await {
                        Ok(done) => finish(vec![job], done, &queued, hook),
                        Err(e) => {
                            let _ = job.reply.send(Err(e));
                        }
                    }
                }
            }
            Err(e) => {
                for job in batch {
                    let _ = job.reply.send(Err(StoreError::Database(e.to_string())));
                }
            }
        }
    }
}

/// What a committed batch decided.
struct Written {
    decisions: Vec<Acceptance>,
    /// Whether a delivery was left queued for the engine.
    queued: bool,
    /// The events of deliveries the acceptances made themselves.
    delivered: Vec<Event>,
}

fn finish(
    batch: Vec<AcceptJob>,
    done: Written,
    queued: &Notify,
    hook: Option<&dyn AcceptanceDelivery>,
) {
    if done.queued {
        queued.notify_one();
    }
    if let Some(h) = hook
        && !done.delivered.is_empty()
    {
        h.recorded(&done.delivered);
    }
    for (job, decision) in batch.into_iter().zip(done.decisions) {
        let _ = job.reply.send(Ok(decision));
    }
}

/// Decides and writes a batch in one transaction.
async fn write(
    pool: &PgPool,
    batch: &[AcceptJob],
    hook: Option<&dyn AcceptanceDelivery>,
) -> Result<Written> {
    let mut tx = pool.begin().await?;
    // Each scope's row, locked in one order on every node.
    let mut scopes: Vec<&Scope> = batch.iter().map(|j| &j.scope).collect();
    scopes.sort_by(|a, b| {
        (a.account.as_str(), a.region.as_str()).cmp(&(b.account.as_str(), b.region.as_str()))
    });
    scopes.dedup();
    let mut states: HashMap<&Scope, QuotaState> = HashMap::new();
    for scope in scopes {
        let now = batch
            .iter()
            .find(|j| &j.scope == scope)
            .map(|j| j.quota.now)
            .unwrap_or_default();
        let (at, tokens): (Option<i64>, Option<f64>) = sqlx::query_as(
            "INSERT INTO quota_state (account_id, region) VALUES ($1, $2)
             ON CONFLICT (account_id, region) DO UPDATE SET account_id = excluded.account_id
             RETURNING bucket_at, bucket_tokens",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let minutes: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT minute, recipients FROM send_ledger
             WHERE account_id = $1 AND region = $2 AND minute > $3 ORDER BY minute",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(minute_of(now) - DAY_MINUTES)
        .fetch_all(&mut *tx)
        .await?;
        let mut state = QuotaState::from_ledger(minutes);
        state.set_bucket(at.zip(tokens));
        states.insert(scope, state);
    }
    // The decisions, and what they counted per scope and minute.
    let mut decisions = Vec::with_capacity(batch.len());
    let mut counted: Vec<(&Scope, i64, i64)> = vec![];
    for job in batch {
        let state = states.get_mut(&job.scope).expect("every scope was read");
        let decision = state.decide(&job.quota);
        if decision == Acceptance::Accepted && job.quota.daily_recipients > 0 {
            let minute = minute_of(job.quota.now);
            let n = i64::from(job.quota.daily_recipients);
            match counted
                .iter_mut()
                .find(|(s, m, _)| **s == job.scope && *m == minute)
            {
                Some((_, _, total)) => *total += n,
                None => counted.push((&job.scope, minute, n)),
            }
        }
        decisions.push(decision);
    }
    if !counted.is_empty() {
        let (a, r, m, n): (Vec<&str>, Vec<&str>, Vec<i64>, Vec<i64>) = counted.iter().fold(
            Default::default(),
            |(mut a, mut r, mut m, mut n), (s, minute, count)| {
                a.push(s.account.as_str());
                r.push(s.region.as_str());
                m.push(*minute);
                n.push(*count);
                (a, r, m, n)
            },
        );
        sqlx::query(
            "INSERT INTO send_ledger (account_id, region, minute, recipients)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[])
             ON CONFLICT (account_id, region, minute) DO UPDATE SET
               recipients = send_ledger.recipients + excluded.recipients",
        )
        .bind(&a)
        .bind(&r)
        .bind(&m)
        .bind(&n)
        .execute(&mut *tx)
        .await?;
    }
    for (scope, state) in &states {
        let (at, tokens) = state.bucket().unzip();
        sqlx::query(
            "UPDATE quota_state SET bucket_at = $3, bucket_tokens = $4
             WHERE account_id = $1 AND region = $2",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(at)
        .bind(tokens)
        .execute(&mut *tx)
        .await?;
    }
    let accepted: Vec<&AcceptJob> = batch
        .iter()
        .zip(&decisions)
        .filter(|(_, d)| **d == Acceptance::Accepted)
        .map(|(j, _)| j)
        .collect();
    let mut events: Vec<Event> = vec![];
    let mut delivered: Vec<Event> = vec![];
    let mut queued = false;
    if !accepted.is_empty() {
        let mut m = Messages::default();
        let mut d = Deliveries::default();
        for job in &accepted {
            m.push(job)?;
            events.extend(job.message.events.iter().cloned());
            for (domain, recipients) in group_by_domain(&job.message.destinations) {
                let made =
                    hook.and_then(|h| h.delivered(&job.scope, &job.message, &domain, &recipients));
                queued |= made.is_none();
                d.push(
                    job,
                    domain,
                    to_json(&recipients)?,
                    made.as_ref().map(|e| e.at),
                );
                delivered.extend(made);
            }
        }
        sqlx::query(
            "INSERT INTO messages (id, account_id, region, operation, source, destinations,
               subject, created_at, raw, meta)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
               $6::text[], $7::text[], $8::bigint[], $9::bytea[], $10::text[])",
        )
        .bind(&m.id)
        .bind(&m.account)
        .bind(&m.region)
        .bind(&m.operation)
        .bind(&m.source)
        .bind(&m.destinations)
        .bind(&m.subject)
        .bind(&m.created_at)
        .bind(&m.raw)
        .bind(&m.meta)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO deliveries (message_id, account_id, region, domain, recipients, state,
               attempts, next_attempt_at, accepted_at, updated_at)
             SELECT m, a, r, d, rc, CASE WHEN done IS NULL THEN 'queued' ELSE 'delivered' END,
                    CASE WHEN done IS NULL THEN 0 ELSE 1 END, t, t, COALESCE(done, t)
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::bigint[], $7::bigint[]) AS u(m, a, r, d, rc, t, done)",
        )
        .bind(&d.message)
        .bind(&d.account)
        .bind(&d.region)
        .bind(&d.domain)
        .bind(&d.recipients)
        .bind(&d.at)
        .bind(&d.done)
        .execute(&mut *tx)
        .await?;
    }
    // The acceptances' own events (Send) come before their deliveries'.
    events.extend(delivered.iter().cloned());
    queue::insert_events(&mut tx, &events).await?;
    tx.commit().await?;
    Ok(Written {
        decisions,
        queued,
        delivered,
    })
}

/// Accepted messages' columns, for one `UNNEST` insert.
#[derive(Default)]
struct Messages<'a> {
    id: Vec<&'a str>,
    account: Vec<&'a str>,
    region: Vec<&'a str>,
    operation: Vec<&'a str>,
    source: Vec<&'a str>,
    destinations: Vec<String>,
    subject: Vec<Option<&'a str>>,
    created_at: Vec<i64>,
    raw: Vec<&'a [u8]>,
    meta: Vec<String>,
}

impl<'a> Messages<'a> {
    fn push(&mut self, job: &'a AcceptJob) -> Result<()> {
        let m = &job.message;
        self.id.push(&m.id);
        self.account.push(job.scope.account.as_str());
        self.region.push(job.scope.region.as_str());
        self.operation.push(&m.operation);
        self.source.push(&m.source);
        self.destinations.push(to_json(&m.destinations)?);
        self.subject.push(m.subject.as_deref());
        self.created_at.push(m.created_at);
        self.raw.push(&m.raw);
        self.meta.push(to_json(&m.meta)?);
        Ok(())
    }
}

/// Their deliveries' columns: one a message and recipient domain, queued,
/// or delivered at `done` by the acceptance itself.
#[derive(Default)]
struct Deliveries<'a> {
    message: Vec<&'a str>,
    account: Vec<&'a str>,
    region: Vec<&'a str>,
    domain: Vec<String>,
    recipients: Vec<String>,
    at: Vec<i64>,
    done: Vec<Option<i64>>,
}

impl<'a> Deliveries<'a> {
    fn push(&mut self, job: &'a AcceptJob, domain: String, recipients: String, done: Option<i64>) {
        self.message.push(&job.message.id);
        self.account.push(job.scope.account.as_str());
        self.region.push(job.scope.region.as_str());
        self.domain.push(domain);
        self.recipients.push(recipients);
        self.at.push(job.message.created_at);
        self.done.push(done);
    }
}

fn decode_message(r: &PgRow) -> Result<StoredMessage> {
    let destinations: String = r.try_get("destinations")?;
    let meta: String = r.try_get("meta")?;
    Ok(StoredMessage {
        scope: scope_of(r)?,
        message: NewMessage {
            id: r.try_get("id")?,
            operation: r.try_get("operation")?,
            source: r.try_get("source")?,
            destinations: from_json(&destinations)?,
            subject: r.try_get("subject")?,
            created_at: r.try_get("created_at")?,
            raw: r.try_get("raw")?,
            meta: from_json(&meta)?,
            events: vec![],
        },
    })
}

impl PgStore {
    pub(super) async fn accept_message(
        &self,
        scope: &Scope,
        message: &NewMessage,
        quota: &QuotaCheck,
    ) -> Result<Acceptance> {
        let sender = self
            .writer
            .lock()
            .map_err(|_| StoreError::Batch("the writer lock is poisoned".into()))?
            .clone()
            .ok_or_else(|| StoreError::Batch("the store is closed".into()))?;
        let (reply, answer) = oneshot::channel();
        sender
            .send(AcceptJob {
                scope: scope.clone(),
                message: message.clone(),
                quota: *quota,
                reply,
            })
            .await
            .map_err(|_| StoreError::Batch("the writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Batch("the writer dropped a request".into()))?
    }

    pub(super) async fn sent_last_24h(&self, scope: &Scope, now: Millis) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(recipients), 0)::bigint FROM send_ledger
             WHERE account_id = $1 AND region = $2 AND minute > $3",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(minute_of(now) - DAY_MINUTES)
        .fetch_one(&self.pool)
        .await?;
        Ok(count(n))
    }

    pub(super) async fn send_statistics(
        &self,
        scope: &Scope,
        since: Millis,
    ) -> Result<Vec<SendStatPoint>> {
        let sent: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT (minute / 15) * 15 AS bucket, SUM(recipients)::bigint FROM send_ledger
             WHERE account_id = $1 AND region = $2 AND minute >= $3
             GROUP BY bucket ORDER BY bucket",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(since / 60_000)
        .fetch_all(&self.pool)
        .await?;
        let outcomes: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT (at / 900000) * 900000 AS bucket, kind,
                    SUM(COALESCE(jsonb_array_length((data::jsonb) -> 'recipients'), 0))::bigint
             FROM events WHERE account_id = $1 AND region = $2 AND at >= $3
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

    pub(super) async fn list_messages(&self, filter: &MessageFilter) -> Result<Vec<StoredMessage>> {
        let mut sql = Sql::new(
            "SELECT id, account_id, region, operation, source, destinations, subject, created_at,
                    raw, meta
             FROM messages WHERE true",
        );
        if filter.recipient.is_some() {
            sql.push(
                " AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(destinations::jsonb) v
                   WHERE lower(v) = lower(?))",
            );
        }
        if filter.sender.is_some() {
            sql.push(" AND lower(source) = lower(?)");
        }
        if filter.account.is_some() {
            sql.push(" AND account_id = ?");
        }
        sql.push(" ORDER BY seq DESC LIMIT ?");
        // The SQL is built from fixed fragments; values are bound.
        let mut q = sqlx::query(AssertSqlSafe(sql.text));
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
            "SELECT id, account_id, region, operation, source, destinations, subject, created_at,
                    raw, meta
             FROM messages WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(decode_message).transpose()
    }

    /// Every message and its unfinished deliveries.
    pub(super) async fn clear_messages(&self) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM deliveries WHERE state IN ('queued', 'sending')")
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM messages")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }
}
