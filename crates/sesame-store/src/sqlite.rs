//! The embedded backend: SQLite in the data directory, WAL mode, migrations
//! applied at open. Several processes (the server and operator commands) may
//! open the same file; SQLite serialises their writes.

use crate::cache::ReadCache;
use crate::{
    AcceptanceDelivery, Created, IdentityQuery, Insert, Listed, Result, Store, StoreError,
};
use async_trait::async_trait;
use sesame_model::{
    Acceptance, AccessKey, Account, AccountId, CustomVerificationTemplate, DeliveryState,
    DeliveryUpdate, Event, EventFilter, EventKind, Identity, IdentityKind, MessageFilter, Millis,
    NewMessage, QueueEntry, QueueSummary, QueuedDelivery, QuotaCheck, Region, Rejection, Scope,
    SendStatPoint, StoredMessage, Template,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row};
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};
use writer::{AcceptJob, HandOff, Job, OnAcceptance, QueueJob};

// The backend's own errors, as the store's.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(e.to_string())
    }
}

mod writer;

pub struct SqliteStore {
    pool: SqlitePool,
    /// Accounts and identities as sends read them; see [`crate::cache`].
    cache: ReadCache,
    /// Hands acceptances and queue writes to the writer thread; `None` once closed.
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    /// The writer thread, joined on close.
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Notified after a commit that queued deliveries.
    queued: Arc<Notify>,
    /// Deliveries born claimed, for the engine's next claim.
    handoff: Arc<HandOff>,
    /// Deliveries that acceptances make by themselves, shared with the
    /// writer.
    on_acceptance: OnAcceptance,
}

impl SqliteStore {
    /// Opens (creating if needed) `sesame.db` in `dir` and migrates it.
    pub async fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Corrupt(format!("cannot create data dir {}: {e}", dir.display()))
        })?;
        let opts = SqliteConnectOptions::new()
            .filename(dir.join("sesame.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a commit survives a process crash; fsync per checkpoint.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            // Checkpoints are the writer's checkpoint thread's work; a
            // pool connection checkpoints only past the same safety net.
            .pragma("wal_autocheckpoint", writer::WAL_HARD_LIMIT.to_string())
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        let queued = Arc::new(Notify::new());
        let handoff = Arc::new(HandOff::default());
        let on_acceptance = OnAcceptance::default();
        let (tx, thread) = writer::spawn(
            &dir.join("sesame.db"),
            queued.clone(),
            handoff.clone(),
            on_acceptance.clone(),
        )?;
        Ok(Self {
            queued,
            pool,
            cache: ReadCache::new(dir),
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(thread)),
            handoff,
            on_acceptance,
        })
    }

    /// Hands a job to the writer task and waits for its answer.
    async fn submit<T>(&self, job: Job, answer: oneshot::Receiver<Result<T>>) -> Result<T> {
        let sender = self
            .writer
            .lock()
            .map_err(|_| StoreError::Batch("the writer lock is poisoned".into()))?
            .clone()
            .ok_or_else(|| StoreError::Batch("the store is closed".into()))?;
        sender
            .send(job)
            .await
            .map_err(|_| StoreError::Batch("the writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Batch("the writer dropped a request".into()))?
    }

    /// Stops the writer after the acceptances already handed to it, then
    /// closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
        let thread = self.writer_thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        self.pool.close().await;
    }

    async fn read_account(&self, scope: &Scope) -> Result<Option<Account>> {
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

    async fn write_account(&self, scope: &Scope, account: &Account) -> Result<bool> {
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

fn kind_str(k: IdentityKind) -> &'static str {
    match k {
        IdentityKind::EmailAddress => "EmailAddress",
        IdentityKind::Domain => "Domain",
    }
}

fn encode(identity: &Identity) -> Result<String> {
    serde_json::to_string(identity).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode(row: &SqliteRow) -> Result<Identity> {
    let data: String = row.try_get("data")?;
    let mut identity: Identity =
        serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    identity.version = row.try_get("version")?;
    Ok(identity)
}

#[async_trait]
impl Store for SqliteStore {
    async fn put_access_key(&self, key: &AccessKey) -> Result<()> {
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

    async fn get_access_key(&self, id: &str) -> Result<Option<AccessKey>> {
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

    async fn insert_identity(
        &self,
        scope: &Scope,
        identity: &Identity,
        limit: u32,
    ) -> Result<Insert> {
        let data = encode(identity)?;
        // BEGIN IMMEDIATE takes the write lock first, so the count and the
        // insert cannot interleave with another writer. Dropping `tx` before
        // commit (an error, or a cancelled request) rolls back.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let existing = sqlx::query(
            "SELECT data, version FROM identities WHERE account_id = ? AND region = ? AND name = ?",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(identity.name.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = existing {
            return Ok(Insert::Exists(Box::new(decode(&row)?)));
        }
        if scope_is_full(&mut tx, Scoped::Identities, scope, limit).await? {
            return Ok(Insert::LimitReached);
        }
        sqlx::query(
            "INSERT INTO identities (account_id, region, name, kind, verification_status,
               dkim_status, version, created_at, data, verify_token)
             VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(identity.name.as_str())
        .bind(kind_str(identity.kind()))
        .bind(identity.verification_status.as_str())
        .bind(identity.dkim.status.as_str())
        .bind(identity.created_at)
        .bind(&data)
        .bind(identity.email_link.as_ref().map(|l| l.token.as_str()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.cache.bump();
        Ok(Insert::Inserted)
    }

    async fn get_identity(&self, scope: &Scope, name: &str) -> Result<Option<Identity>> {
        let row = sqlx::query(
            "SELECT data, version FROM identities WHERE account_id = ? AND region = ? AND name = ?",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(decode).transpose()
    }

    async fn find_identity_by_link(&self, token: &str) -> Result<Option<(Scope, Identity)>> {
        let row = sqlx::query(
            "SELECT account_id, region, data, version FROM identities WHERE verify_token = ?",
        )
        .bind(token)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let account: String = r.try_get("account_id")?;
            let region: String = r.try_get("region")?;
            let scope = Scope::new(
                AccountId::parse(&account).map_err(|e| StoreError::Corrupt(e.message))?,
                Region::parse(&region).map_err(|e| StoreError::Corrupt(e.message))?,
            );
            Ok((scope, decode(&r)?))
        })
        .transpose()
    }

    async fn get_identities(&self, scope: &Scope, names: &[String]) -> Result<Vec<Arc<Identity>>> {
        let (mut out, misses, generation) = match self.cache.entries() {
            Some(g) => {
                let (hits, misses) = g.1.identities(scope, names);
                (hits, misses, Some(g.1.generation))
            }
            None => (vec![], names.to_vec(), None),
        };
        let mut read = Vec::with_capacity(misses.len());
        for chunk in misses.chunks(200) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!(
                "SELECT data, version FROM identities WHERE account_id = ? AND region = ? AND name IN ({marks})"
            );
            // Only `?` placeholders are interpolated; values are bound.
            let mut q = sqlx::query(AssertSqlSafe(sql))
                .bind(scope.account.as_str())
                .bind(scope.region.as_str());
            for n in chunk {
                q = q.bind(n);
            }
            for row in q.fetch_all(&self.pool).await? {
                read.push(Arc::new(decode(&row)?));
            }
        }
        if let Some(mut g) = generation.and_then(|n| self.cache.entries_since(n)) {
            g.1.put_identities(scope, &misses, &read);
        }
        out.extend(read);
        out.sort_by_key(|i| names.iter().position(|n| n == i.name.as_str()));
        Ok(out)
    }

    async fn update_identity(&self, scope: &Scope, identity: &Identity) -> Result<bool> {
        let written = self
            .update_identities(&[(scope.clone(), identity.clone())])
            .await?;
        Ok(written[0])
    }

    async fn update_identities(&self, identities: &[(Scope, Identity)]) -> Result<Vec<bool>> {
        if identities.is_empty() {
            return Ok(vec![]);
        }
        let mut out = Vec::with_capacity(identities.len());
        let mut tx = self.pool.begin().await?;
        for (scope, identity) in identities {
            let done = sqlx::query(
                "UPDATE identities SET data = ?, verification_status = ?, dkim_status = ?,
                   verify_token = ?, version = version + 1
                 WHERE account_id = ? AND region = ? AND name = ? AND version = ?",
            )
            .bind(encode(identity)?)
            .bind(identity.verification_status.as_str())
            .bind(identity.dkim.status.as_str())
            .bind(identity.email_link.as_ref().map(|l| l.token.as_str()))
            .bind(scope.account.as_str())
            .bind(scope.region.as_str())
            .bind(identity.name.as_str())
            .bind(identity.version)
            .execute(&mut *tx)
            .await?;
            out.push(done.rows_affected() == 1);
        }
        tx.commit().await?;
        self.cache.bump();
        Ok(out)
    }

    async fn list_all_identities(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Scope, Identity)>> {
        let rows = sqlx::query(
            "SELECT seq, account_id, region, data, version FROM identities
             WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("seq")?, scope_of(r)?, decode(r)?)))
            .collect()
    }

    async fn dkim_key_by_token(&self, token: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT data, version FROM identities
             WHERE json_extract(data, '$.dkim.tokens[0]') = ?1
                OR json_extract(data, '$.dkim.tokens[1]') = ?1
                OR json_extract(data, '$.dkim.tokens[2]') = ?1
             LIMIT 1",
        )
        .bind(token)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let identity = decode(&row)?;
        Ok(identity
            .dkim
            .key
            .filter(|_| identity.dkim.origin == sesame_model::DkimOrigin::AwsSes)
            .map(|k| k.public_spki_b64))
    }

    async fn delete_identity(&self, scope: &Scope, name: &str) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM identities WHERE account_id = ? AND region = ? AND name = ?")
                .bind(scope.account.as_str())
                .bind(scope.region.as_str())
                .bind(name)
                .execute(&self.pool)
                .await?;
        self.cache.bump();
        Ok(done.rows_affected() == 1)
    }

    async fn list_identities(
        &self,
        scope: &Scope,
        query: &IdentityQuery,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Listed>> {
        let mut sql = String::from(
            "SELECT seq, data, version FROM identities WHERE account_id = ? AND region = ? AND seq > ?",
        );
        if query.kind.is_some() {
            sql.push_str(" AND kind = ?");
        }
        if query.name_contains.is_some() {
            sql.push_str(" AND instr(name, ?) > 0");
        }
        if query.status.is_some() {
            sql.push_str(" AND verification_status = ?");
        }
        sql.push_str(" ORDER BY seq LIMIT ?");
        // The SQL is built from fixed fragments; values are bound.
        let mut q = sqlx::query(AssertSqlSafe(sql))
            .bind(scope.account.as_str())
            .bind(scope.region.as_str())
            .bind(after);
        if let Some(k) = query.kind {
            q = q.bind(kind_str(k));
        }
        if let Some(n) = &query.name_contains {
            q = q.bind(n.as_str());
        }
        if let Some(s) = query.status {
            q = q.bind(s.as_str());
        }
        let rows = q.bind(i64::from(limit)).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(Listed {
                    seq: r.try_get("seq")?,
                    identity: decode(r)?,
                })
            })
            .collect()
    }

    async fn get_account(&self, scope: &Scope) -> Result<Option<Account>> {
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

    async fn save_account(&self, scope: &Scope, account: &Account) -> Result<bool> {
        let saved = self.write_account(scope, account).await?;
        self.cache.bump();
        Ok(saved)
    }

    async fn sent_last_24h(&self, scope: &Scope, now: Millis) -> Result<u64> {
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

    async fn send_statistics(&self, scope: &Scope, since: Millis) -> Result<Vec<SendStatPoint>> {
        const QUARTER: i64 = 15 * 60_000;
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
        let mut points: std::collections::BTreeMap<i64, SendStatPoint> = Default::default();
        for (b, n) in sent {
            let start = b * 60_000;
            points
                .entry(start)
                .or_insert(SendStatPoint {
                    start,
                    ..Default::default()
                })
                .delivery_attempts += n.max(0) as u64;
        }
        for (start, kind, n) in outcomes {
            let p = points
                .entry(start - start % QUARTER)
                .or_insert(SendStatPoint {
                    start,
                    ..Default::default()
                });
            match EventKind::parse(&kind) {
                Some(EventKind::Bounce) => p.bounces += n.max(0) as u64,
                Some(EventKind::Complaint) => p.complaints += n.max(0) as u64,
                _ => {}
            }
        }
        Ok(points.into_values().collect())
    }

    async fn accept_message(
        &self,
        scope: &Scope,
        message: &NewMessage,
        quota: &QuotaCheck,
    ) -> Result<Acceptance> {
        let (reply, answer) = oneshot::channel();
        self.submit(
            Job::Accept(AcceptJob {
                scope: scope.clone(),
                message: message.clone(),
                quota: *quota,
                reply,
            }),
            answer,
        )
        .await
    }

    async fn list_messages(&self, filter: &MessageFilter) -> Result<Vec<StoredMessage>> {
        let mut sql = String::from(
            "SELECT id, account_id, region, operation, source, destinations, subject, created_at, raw
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

    async fn get_message(&self, id: &str) -> Result<Option<StoredMessage>> {
        let row = sqlx::query(
            "SELECT id, account_id, region, operation, source, destinations, subject, created_at, raw
             FROM messages WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(decode_message).transpose()
    }

    async fn clear_messages(&self) -> Result<u64> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Queue(QueueJob::Clear { reply }), answer)
            .await
    }

    fn queue_signal(&self) -> Arc<Notify> {
        self.queued.clone()
    }

    fn deliver_on_acceptance(&self, hook: Arc<dyn AcceptanceDelivery>) {
        self.on_acceptance.set(hook);
    }

    async fn claim_deliveries(
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

    async fn finish_deliveries(
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

    async fn requeue_in_flight(&self, now: Millis) -> Result<u64> {
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

    fn next_delivery_due_hint(&self) -> Option<Option<Millis>> {
        self.handoff.next_due()
    }

    async fn next_delivery_due(&self) -> Result<Option<Millis>> {
        Ok(
            sqlx::query_scalar(
                "SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'queued'",
            )
            .fetch_one(&self.pool)
            .await?,
        )
    }

    async fn queue_summary(&self) -> Result<QueueSummary> {
        let counts: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
                .fetch_all(&self.pool)
                .await?;
        let mut s = QueueSummary::default();
        for (state, n) in counts {
            let n = n.max(0) as u64;
            match DeliveryState::parse(&state) {
                Some(DeliveryState::Queued) => s.queued = n,
                Some(DeliveryState::Sending) => s.sending = n,
                Some(DeliveryState::Delivered) => s.delivered = n,
                Some(DeliveryState::Failed) => s.failed = n,
                None => return Err(StoreError::Corrupt(format!("delivery state {state}"))),
            }
        }
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

    async fn list_queue(
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
                })
            })
            .collect()
    }

    async fn queue_depth(&self) -> Result<(u64, u64)> {
        let (queued, sending): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 'queued'),
                    (SELECT COUNT(*) FROM deliveries WHERE state = 'sending')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((queued.max(0) as u64, sending.max(0) as u64))
    }

    async fn retry_message(&self, message_id: &str, now: Millis) -> Result<u64> {
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

    async fn drop_message(&self, message_id: &str, now: Millis) -> Result<u64> {
        Ok(sqlx::query(DROP_MESSAGE)
            .bind(now)
            .bind(message_id)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn list_events(&self, filter: &EventFilter) -> Result<Vec<Event>> {
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

    async fn record_rejection(&self, scope: &Scope, rejection: &Rejection) -> Result<()> {
        let details =
            serde_json::to_string(rejection).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO rejections (account_id, region, created_at, operation, code, message, details)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(rejection.created_at)
        .bind(&rejection.operation)
        .bind(&rejection.rule)
        .bind(&rejection.message)
        .bind(&details)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_rejections(&self, scope: &Scope, limit: u32) -> Result<Vec<Rejection>> {
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

    async fn insert_template(&self, scope: &Scope, t: &Template, limit: u32) -> Result<Created> {
        let data = to_json(t)?;
        named_insert(
            &self.pool,
            Scoped::Templates,
            scope,
            &t.name,
            t.created_at,
            &data,
            limit,
        )
        .await
    }

    async fn get_template(&self, scope: &Scope, name: &str) -> Result<Option<Template>> {
        named_get(&self.pool, Scoped::Templates, scope, name)
            .await?
            .map(|d| from_json(&d))
            .transpose()
    }

    async fn update_template(&self, scope: &Scope, t: &Template) -> Result<bool> {
        named_update(&self.pool, Scoped::Templates, scope, &t.name, &to_json(t)?).await
    }

    async fn delete_template(&self, scope: &Scope, name: &str) -> Result<bool> {
        named_delete(&self.pool, Scoped::Templates, scope, name).await
    }

    async fn list_templates(
        &self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Template)>> {
        named_list(&self.pool, Scoped::Templates, scope, after, limit).await
    }

    async fn insert_cv_template(
        &self,
        scope: &Scope,
        t: &CustomVerificationTemplate,
        limit: u32,
    ) -> Result<Created> {
        let data = to_json(t)?;
        named_insert(
            &self.pool,
            Scoped::CvTemplates,
            scope,
            &t.name,
            t.created_at,
            &data,
            limit,
        )
        .await
    }

    async fn get_cv_template(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<CustomVerificationTemplate>> {
        named_get(&self.pool, Scoped::CvTemplates, scope, name)
            .await?
            .map(|d| from_json(&d))
            .transpose()
    }

    async fn update_cv_template(
        &self,
        scope: &Scope,
        t: &CustomVerificationTemplate,
    ) -> Result<bool> {
        named_update(
            &self.pool,
            Scoped::CvTemplates,
            scope,
            &t.name,
            &to_json(t)?,
        )
        .await
    }

    async fn delete_cv_template(&self, scope: &Scope, name: &str) -> Result<bool> {
        named_delete(&self.pool, Scoped::CvTemplates, scope, name).await
    }

    async fn list_cv_templates(
        &self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, CustomVerificationTemplate)>> {
        named_list(&self.pool, Scoped::CvTemplates, scope, after, limit).await
    }
}

/// Tables whose rows count toward a per-scope limit.
#[derive(Clone, Copy)]
enum Scoped {
    Identities,
    Templates,
    CvTemplates,
}

impl Scoped {
    /// The table; only these fixed names are ever interpolated into SQL.
    fn table(self) -> &'static str {
        match self {
            Self::Identities => "identities",
            Self::Templates => "templates",
            Self::CvTemplates => "cv_templates",
        }
    }
}

/// Inserts a named JSON document (a template of either kind) unless one of
/// that name exists or the scope holds `limit`, in one transaction.
async fn named_insert(
    pool: &SqlitePool,
    table: Scoped,
    scope: &Scope,
    name: &str,
    created_at: Millis,
    data: &str,
    limit: u32,
) -> Result<Created> {
    let t = table.table();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let exists: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT seq FROM {t} WHERE account_id = ? AND region = ? AND name = ?"
    )))
    .bind(scope.account.as_str())
    .bind(scope.region.as_str())
    .bind(name)
    .fetch_optional(&mut *tx)
    .await?;
    if exists.is_some() {
        return Ok(Created::Exists);
    }
    if scope_is_full(&mut tx, table, scope, limit).await? {
        return Ok(Created::LimitReached);
    }
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {t} (account_id, region, name, created_at, data) VALUES (?, ?, ?, ?, ?)"
    )))
    .bind(scope.account.as_str())
    .bind(scope.region.as_str())
    .bind(name)
    .bind(created_at)
    .bind(data)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Created::Created)
}

/// `WHERE account_id = ? AND region = ? AND name = ?` on a named table.
fn by_name<'q>(
    sql: String,
    scope: &'q Scope,
    name: &'q str,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    sqlx::query(AssertSqlSafe(sql))
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(name)
}

async fn named_get(
    pool: &SqlitePool,
    table: Scoped,
    scope: &Scope,
    name: &str,
) -> Result<Option<String>> {
    let sql = format!(
        "SELECT data FROM {} WHERE account_id = ? AND region = ? AND name = ?",
        table.table()
    );
    match by_name(sql, scope, name).fetch_optional(pool).await? {
        Some(row) => Ok(Some(row.try_get("data")?)),
        None => Ok(None),
    }
}

async fn named_update(
    pool: &SqlitePool,
    table: Scoped,
    scope: &Scope,
    name: &str,
    data: &str,
) -> Result<bool> {
    let done = sqlx::query(AssertSqlSafe(format!(
        "UPDATE {} SET data = ? WHERE account_id = ? AND region = ? AND name = ?",
        table.table()
    )))
    .bind(data)
    .bind(scope.account.as_str())
    .bind(scope.region.as_str())
    .bind(name)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn named_delete(pool: &SqlitePool, table: Scoped, scope: &Scope, name: &str) -> Result<bool> {
    let sql = format!(
        "DELETE FROM {} WHERE account_id = ? AND region = ? AND name = ?",
        table.table()
    );
    Ok(by_name(sql, scope, name)
        .execute(pool)
        .await?
        .rows_affected()
        == 1)
}

/// Documents after position `after`, decoded, in position order.
async fn named_list<T: serde::de::DeserializeOwned>(
    pool: &SqlitePool,
    table: Scoped,
    scope: &Scope,
    after: i64,
    limit: u32,
) -> Result<Vec<(i64, T)>> {
    let rows: Vec<(i64, String)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT seq, data FROM {} WHERE account_id = ? AND region = ? AND seq > ?
         ORDER BY seq LIMIT ?",
        table.table()
    )))
    .bind(scope.account.as_str())
    .bind(scope.region.as_str())
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(seq, d)| Ok((seq, from_json(&d)?)))
        .collect()
}

/// Whether `scope` already holds `limit` rows of `table`.
async fn scope_is_full(
    conn: &mut sqlx::SqliteConnection,
    table: Scoped,
    scope: &Scope,
    limit: u32,
) -> Result<bool> {
    let sql = format!(
        "SELECT COUNT(*) FROM {} WHERE account_id = ? AND region = ?",
        table.table()
    );
    let count: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .fetch_one(conn)
        .await?;
    Ok(count >= i64::from(limit))
}

fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn scope_from(account: &str, region: &str) -> Result<Scope> {
    Ok(Scope::new(
        AccountId::parse(account).map_err(|e| StoreError::Corrupt(e.message))?,
        Region::parse(region).map_err(|e| StoreError::Corrupt(e.message))?,
    ))
}

/// An operator's retry of a message's queued deliveries. Its condition on
/// `state` lets SQLite search the partial index `deliveries_message`.
const RETRY_MESSAGE: &str = "UPDATE deliveries SET next_attempt_at = ?, updated_at = ?
     WHERE message_id = ? AND state = 'queued'";

/// An operator's drop of a message's unfinished deliveries: the queued
/// ones through the partial index `deliveries_message`, the ones in flight
/// through `deliveries_sending` (which holds only what is in flight).
const DROP_MESSAGE: &str = "UPDATE deliveries SET state = 'failed', lease_until = NULL,
       updated_at = ?1, last_error = 'dropped by an operator'
     WHERE id IN (
       SELECT id FROM deliveries WHERE message_id = ?2 AND state = 'queued'
       UNION ALL
       SELECT id FROM deliveries WHERE state = 'sending' AND message_id = ?2)";

fn scope_of(r: &SqliteRow) -> Result<Scope> {
    scope_from(r.try_get("account_id")?, r.try_get("region")?)
}

fn decode_message(r: &SqliteRow) -> Result<StoredMessage> {
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
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        crate::conformance::run(std::sync::Arc::new(store)).await;
    }

    #[tokio::test]
    async fn cached_reads_see_writes_from_another_process() {
        use crate::conformance::{identity, scope};
        let dir = tempfile::tempdir().unwrap();
        let server = SqliteStore::open(dir.path()).await.unwrap();
        let operator = SqliteStore::open(dir.path()).await.unwrap();
        let s = scope("191919191919", "us-east-1");
        // The server caches "absent" for both...
        assert_eq!(server.get_account(&s).await.unwrap(), None);
        assert!(
            server
                .get_identities(&s, &["x.com".into()])
                .await
                .unwrap()
                .is_empty()
        );
        // ...another store on the same directory writes...
        operator
            .save_account(&s, &Account::new(true))
            .await
            .unwrap();
        operator
            .insert_identity(&s, &identity("x.com"), 10)
            .await
            .unwrap();
        // ...and the server's next reads see it.
        assert!(
            server
                .get_account(&s)
                .await
                .unwrap()
                .unwrap()
                .production_access
        );
        let mut found = server.get_identities(&s, &["x.com".into()]).await.unwrap();
        assert_eq!(found.len(), 1);
        let mut verified = Arc::unwrap_or_clone(found.remove(0));
        verified.verification_status = sesame_model::VerificationStatus::Success;
        assert!(operator.update_identity(&s, &verified).await.unwrap());
        assert!(server.get_identities(&s, &["x.com".into()]).await.unwrap()[0].is_verified());
        operator.delete_identity(&s, "x.com").await.unwrap();
        assert!(
            server
                .get_identities(&s, &["x.com".into()])
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn the_daily_quota_survives_a_restart() {
        use crate::conformance::{message, scope};
        let dir = tempfile::tempdir().unwrap();
        let s = scope("202020202020", "us-east-1");
        let q = |now: i64| QuotaCheck {
            now,
            max_24h: 2.0,
            max_rate: 100.0,
            daily_recipients: 1,
            rate_recipients: 1,
        };
        let t = 1_700_000_000_000;
        let store = SqliteStore::open(dir.path()).await.unwrap();
        for i in 0..2 {
            let r = store
                .accept_message(&s, &message(&format!("a{i}"), &["x@y.z"]), &q(t + i))
                .await;
            assert_eq!(r.unwrap(), Acceptance::Accepted);
        }
        store.close().await;
        let again = SqliteStore::open(dir.path()).await.unwrap();
        let r = again
            .accept_message(&s, &message("a2", &["x@y.z"]), &q(t + 5))
            .await;
        assert_eq!(r.unwrap(), Acceptance::DailyQuotaExceeded);
        // A day later the window has rolled past them.
        let r = again
            .accept_message(
                &s,
                &message("a3", &["x@y.z"]),
                &q(t + 24 * 3600 * 1000 + 60_000),
            )
            .await;
        assert_eq!(r.unwrap(), Acceptance::Accepted);
    }

    /// A message to several domains is one delivery a domain, and they
    /// share one copy of its bytes, whether claimed from the queue or
    /// born claimed.
    #[tokio::test]
    async fn a_messages_deliveries_share_its_bytes() {
        use crate::conformance::{message, quota, scope};
        let dir = tempfile::tempdir().unwrap();
        let s = scope("212121212121", "us-east-1");
        let t = 1_700_000_000_000;
        let q = quota(t, -1.0, 1000.0, 3);
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let to = ["a@x.com", "b@y.com", "c@z.com"];
        for (id, now) in [("queued", t), ("born", t + 10)] {
            store
                .accept_message(&s, &message(id, &to), &q)
                .await
                .unwrap();
            let queued = store.queue_summary().await.unwrap().queued;
            assert_eq!(queued, if id == "queued" { 3 } else { 0 }, "{id}");
            let got = store.claim_deliveries(now, now + 60_000, 10).await.unwrap();
            assert_eq!(got.len(), 3, "{id}");
            assert!(got.iter().all(|d| d.raw == message(id, &[]).raw), "{id}");
            assert!(
                got.iter().all(|d| d.raw.as_ptr() == got[0].raw.as_ptr()),
                "{id}: one copy for the three domains"
            );
        }
        let sum = store.queue_summary().await.unwrap();
        assert_eq!(sum.sending, 6, "both claims took all three domains");
    }

    /// The hand-off holds at most 64 MiB of messages, each counted once
    /// however many domains it goes to: a message that would take more is
    /// queued instead, and room comes back as the engine takes what waits
    /// there.
    #[tokio::test]
    async fn the_hand_off_holds_a_bounded_number_of_bytes() {
        use crate::conformance::{message, quota, scope};
        let dir = tempfile::tempdir().unwrap();
        let s = scope("212121212121", "us-east-1");
        let t = 1_700_000_000_000;
        let q = quota(t, -1.0, 1000.0, 1);
        let store = SqliteStore::open(dir.path()).await.unwrap();
        // The engine's first claim opens the hand-off.
        assert!(
            store
                .claim_deliveries(t, t + 60_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let large = |id: &str| NewMessage {
            raw: vec![b'x'; 15 << 20],
            ..message(id, &["a@x.com"])
        };
        for n in 0..5 {
            store
                .accept_message(&s, &large(&format!("l{n}")), &q)
                .await
                .unwrap();
        }
        let sum = store.queue_summary().await.unwrap();
        assert_eq!(
            (sum.sending, sum.queued),
            (4, 1),
            "60 MiB born, the fifth queued"
        );
        let got = store.claim_deliveries(t + 1, t + 60_000, 10).await.unwrap();
        assert_eq!(got.len(), 5, "the four handed off and the queued one");
        store.accept_message(&s, &large("l5"), &q).await.unwrap();
        let sum = store.queue_summary().await.unwrap();
        assert_eq!((sum.sending, sum.queued), (6, 0), "room again once taken");
        // A message to three domains counts once: 30 MiB wait, not 60.
        let three = NewMessage {
            destinations: vec!["a@x.com".into(), "b@y.com".into(), "c@z.com".into()],
            ..large("l6")
        };
        store
            .accept_message(&s, &three, &quota(t, -1.0, 1000.0, 3))
            .await
            .unwrap();
        for id in ["l7", "l8"] {
            store.accept_message(&s, &large(id), &q).await.unwrap();
        }
        let sum = store.queue_summary().await.unwrap();
        assert_eq!((sum.sending, sum.queued), (11, 0), "60 MiB in the hand-off");
        store.accept_message(&s, &large("l9"), &q).await.unwrap();
        let sum = store.queue_summary().await.unwrap();
        assert_eq!((sum.sending, sum.queued), (11, 1), "75 would not fit");
    }

    /// Once the engine has claimed, new deliveries are born claimed and
    /// handed to its next claim: each exactly once, `sending` in the
    /// database all along, requeued after a restart, claimable from the
    /// queue again when their lease runs out, and never starving what the
    /// queue itself holds.
    #[tokio::test]
    async fn deliveries_born_claimed_are_handed_off_once_and_survive_a_restart() {
        use crate::conformance::{message, quota, scope};
        use sesame_model::DeliveryUpdate;
        let dir = tempfile::tempdir().unwrap();
        let s = scope("212121212121", "us-east-1");
        let t = 1_700_000_000_000;
        let lease = 60_000;
        let q = quota(t, -1.0, 1000.0, 1);
        let at = |id: &str, to: &[&str], created_at: i64| NewMessage {
            created_at,
            ..message(id, to)
        };
        let store = SqliteStore::open(dir.path()).await.unwrap();
        // Before any claim, deliveries are queued, and when the queue is
        // next due is not known without reading it.
        store
            .accept_message(&s, &at("h0", &["a@x.com"], t), &q)
            .await
            .unwrap();
        let sum = store.queue_summary().await.unwrap();
        assert_eq!((sum.queued, sum.sending), (1, 0));
        assert_eq!(store.next_delivery_due_hint(), None);
        assert_eq!(
            store
                .claim_deliveries(t, t + lease, 10)
                .await
                .unwrap()
                .len(),
            1
        );
        // The claim's search told: nothing else is queued.
        assert_eq!(store.next_delivery_due_hint(), Some(None));

        // Now they are born claimed, and the next claim takes them.
        store
            .accept_message(&s, &at("h1", &["a@x.com", "b@y.com"], t + 1), &q)
            .await
            .unwrap();
        let sum = store.queue_summary().await.unwrap();
        assert_eq!((sum.queued, sum.sending), (0, 3), "born claimed");
        let got = store
            .claim_deliveries(t + 2, t + 2 + lease, 10)
            .await
            .unwrap();
        assert_eq!(got.len(), 2);
        let x = got.iter().find(|d| d.domain == "x.com").unwrap();
        assert_eq!(x.message_id, "h1");
        assert_eq!(x.recipients, vec!["a@x.com"]);
        assert_eq!(x.destinations.len(), 2);
        assert_eq!(x.scope, s);
        assert_eq!(x.raw, message("h1", &[]).raw);
        assert_eq!(x.accepted_at, t + 1);
        assert!(
            store
                .claim_deliveries(t + 3, t + 3 + lease, 10)
                .await
                .unwrap()
                .is_empty(),
            "handed off once"
        );

        // A retry in the queue is found even while the hand-off is busy.
        store
            .finish_deliveries(
                vec![DeliveryUpdate::Retry {
                    id: x.id,
                    recipients: x.recipients.clone(),
                    at: t + 10,
                    error: "451".into(),
                }],
                vec![],
            )
            .await
            .unwrap();
        // The retry is known due without reading the queue.
        assert_eq!(store.next_delivery_due_hint(), Some(Some(t + 10)));
        assert_eq!(store.next_delivery_due().await.unwrap(), Some(t + 10));
        store
            .accept_message(&s, &at("h2", &["c@z.com"], t + 11), &q)
            .await
            .unwrap();
        let got = store
            .claim_deliveries(t + 200, t + 200 + lease, 10)
            .await
            .unwrap();
        let mut ids: Vec<_> = got.iter().map(|d| d.message_id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["h1", "h2"]);
        assert_eq!(store.next_delivery_due_hint(), Some(None));

        // A delivery left in the hand-off past its lease is claimed from
        // the queue instead, once.
        store
            .accept_message(&s, &at("h3", &["d@w.com"], t + 300), &q)
            .await
            .unwrap();
        let late = t + 300 + lease + 1;
        let got = store
            .claim_deliveries(late, late + lease, 10)
            .await
            .unwrap();
        let h3: Vec<_> = got.iter().filter(|d| d.message_id == "h3").collect();
        assert_eq!(h3.len(), 1, "{got:?}");

        // Handed off but never claimed when the process ends: the next
        // start requeues it.
        store
            .accept_message(&s, &at("h4", &["e@v.com"], late + 1), &q)
            .await
            .unwrap();
        store.close().await;
        let again = SqliteStore::open(dir.path()).await.unwrap();
        assert!(again.requeue_in_flight(late + 2).await.unwrap() >= 1);
        assert_eq!(again.next_delivery_due_hint(), None, "a new process reads");
        assert_eq!(again.next_delivery_due().await.unwrap(), Some(late + 2));
        let got = again
            .claim_deliveries(late + 2, late + 2 + lease, 10)
            .await
            .unwrap();
        assert!(got.iter().any(|d| d.message_id == "h4"), "{got:?}");
    }

    /// A part of a write round that fails (here a second message with the
    /// same id) fails alone, whether it shares its round with others or
    /// not: it writes and counts nothing, the others stand, and the writer
    /// goes on.
    #[tokio::test]
    async fn a_failing_write_fails_alone() {
        use crate::conformance::{message, quota, scope};
        use sesame_model::{DeliveryUpdate, EventFilter};
        let dir = tempfile::tempdir().unwrap();
        let s = scope("232323232323", "us-east-1");
        let t = 1_700_000_000_000;
        let q = quota(t, -1.0, 1000.0, 1);
        let store = SqliteStore::open(dir.path()).await.unwrap();
        store
            .accept_message(&s, &message("p1", &["a@x.com"]), &q)
            .await
            .unwrap();
        let d = store.claim_deliveries(t, t + 60_000, 10).await.unwrap();
        let to = ["a@x.com".to_owned()];
        let event = |id: &str| delivery_event(&s, &message(id, &["a@x.com"]), &to);
        for round in 0..20 {
            let id = format!("f{round}");
            let again = message("p1", &["a@x.com"]);
            let (dup, fin) = tokio::join!(
                store.accept_message(&s, &again, &q),
                store.finish_deliveries(
                    vec![DeliveryUpdate::Finished {
                        id: d[0].id,
                        failed: false,
                        at: t + 1,
                    }],
                    vec![event(&id)],
                ),
            );
            assert!(dup.is_err(), "a second message p1 is refused");
            fin.unwrap();
            let got = store
                .list_events(&EventFilter {
                    message_id: Some(id),
                    limit: 10,
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(got.len(), 1, "the outcome beside it stands");
        }
        assert_eq!(
            store.sent_last_24h(&s, t).await.unwrap(),
            1,
            "refused ones are not counted"
        );
        let ok = store
            .accept_message(&s, &message("p2", &["a@x.com"]), &q)
            .await
            .unwrap();
        assert_eq!(ok, Acceptance::Accepted);
        assert_eq!(store.sent_last_24h(&s, t).await.unwrap(), 2);
    }

    /// A refused write takes back what its decision counted in the writer's
    /// quota state: its recipients against the 24-hour quota and its tokens
    /// from the rate bucket. Without that, each refused message would use up
    /// quota that nothing was sent with.
    #[tokio::test]
    async fn a_refused_write_takes_back_what_it_counted() {
        use crate::conformance::{message, quota, scope};
        let dir = tempfile::tempdir().unwrap();
        let s = scope("242424242424", "us-east-1");
        let t = 1_700_000_000_000;
        let store = SqliteStore::open(dir.path()).await.unwrap();
        // Two recipients a day, one a second.
        let at = |ms: i64| quota(t + ms, 2.0, 1.0, 1);
        let first = store
            .accept_message(&s, &message("q1", &["a@x.com"]), &at(0))
            .await
            .unwrap();
        assert_eq!(first, Acceptance::Accepted);
        for i in 1..=3 {
            let again = message("q1", &["a@x.com"]);
            assert!(
                store
                    .accept_message(&s, &again, &at(i * 1000))
                    .await
                    .is_err(),
                "a second message q1 is refused"
            );
        }
        let second = store
            .accept_message(&s, &message("q2", &["a@x.com"]), &at(3000))
            .await
            .unwrap();
        assert_eq!(
            second,
            Acceptance::Accepted,
            "neither the day's quota nor this second's token went to the refused writes"
        );
        let third = store
            .accept_message(&s, &message("q3", &["a@x.com"]), &at(5000))
            .await
            .unwrap();
        assert_eq!(third, Acceptance::DailyQuotaExceeded);
        assert_eq!(store.sent_last_24h(&s, t + 5000).await.unwrap(), 2);
    }

    /// A Delivery event of `m` to `recipients`, at its acceptance.
    fn delivery_event(scope: &Scope, m: &NewMessage, recipients: &[String]) -> Event {
        Event {
            kind: EventKind::Delivery,
            scope: scope.clone(),
            message_id: m.id.clone(),
            at: m.created_at,
            recipients: recipients.to_vec(),
            mail: sesame_model::MailInfo::of(m),
            detail: sesame_model::EventDetail::Delivery {
                smtp_response: "250 ok".into(),
                remote_mta: "mailbox".into(),
                reporting_mta: "test".into(),
                processing_time_ms: 0,
            },
        }
    }

    /// Delivers the domains it names at acceptance, and counts what it is
    /// told was recorded.
    struct DeliversTo {
        domains: Vec<&'static str>,
        recorded: Mutex<Vec<String>>,
    }

    impl AcceptanceDelivery for DeliversTo {
        fn delivered(
            &self,
            scope: &Scope,
            m: &NewMessage,
            domain: &str,
            recipients: &[String],
        ) -> Option<Event> {
            self.domains
                .contains(&domain)
                .then(|| delivery_event(scope, m, recipients))
        }

        fn recorded(&self, events: &[Event]) {
            let mut r = self.recorded.lock().unwrap();
            r.extend(events.iter().map(|e| e.message_id.clone()));
        }
    }

    /// With a hook, an acceptance records the deliveries it makes (finished,
    /// with their events, in its own transaction) and queues the rest; a
    /// refused message records nothing.
    #[tokio::test]
    async fn an_acceptance_records_the_deliveries_it_makes() {
        use crate::conformance::{message, quota, scope};
        use sesame_model::EventFilter;
        let dir = tempfile::tempdir().unwrap();
        let s = scope("242424242424", "us-east-1");
        let t = 1_700_000_000_000;
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let hook = Arc::new(DeliversTo {
            domains: vec!["x.com"],
            recorded: Mutex::new(vec![]),
        });
        store.deliver_on_acceptance(hook.clone());
        let q = quota(t, -1.0, 1.0, 1);
        let got = store
            .accept_message(&s, &message("c1", &["a@x.com", "b@y.com", "c@X.com"]), &q)
            .await
            .unwrap();
        assert_eq!(got, Acceptance::Accepted);
        let sum = store.queue_summary().await.unwrap();
        assert_eq!((sum.queued, sum.sending, sum.delivered), (1, 0, 1));
        let events = store
            .list_events(&EventFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].message_id, "c1");
        assert_eq!(events[0].recipients, ["a@x.com", "c@X.com"]);
        assert_eq!(*hook.recorded.lock().unwrap(), ["c1"]);
        // What is left to the engine is y.com's delivery alone.
        let claimed = store.claim_deliveries(t, t + 60_000, 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].domain, "y.com");
        assert_eq!(claimed[0].recipients, ["b@y.com"]);
        // Over the rate: refused, and nothing is delivered or recorded.
        let refused = store
            .accept_message(&s, &message("c2", &["d@x.com"]), &q)
            .await
            .unwrap();
        assert_eq!(refused, Acceptance::RateExceeded);
        let sum = store.queue_summary().await.unwrap();
        assert_eq!((sum.queued, sum.sending, sum.delivered), (0, 1, 1));
        assert_eq!(*hook.recorded.lock().unwrap(), ["c1"]);
        let c2 = store
            .list_events(&EventFilter {
                message_id: Some("c2".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(c2.is_empty());
        // A delivery made at acceptance is finished: a restart has nothing
        // of it to requeue.
        drop(store);
        let store = SqliteStore::open(dir.path()).await.unwrap();
        assert_eq!(store.requeue_in_flight(t + 1).await.unwrap(), 1);
        let sum = store.queue_summary().await.unwrap();
        assert_eq!((sum.queued, sum.delivered), (1, 1));
    }

    /// Accepts `n` messages of `size` bytes each, one after another, from
    /// `first` on.
    async fn accept_many(store: &SqliteStore, s: &Scope, first: usize, n: usize, size: usize) {
        use crate::conformance::{message, quota};
        for i in first..first + n {
            let mut m = message(&format!("w{i:06}"), &["x@y.z"]);
            m.raw = vec![b'x'; size];
            let r = store
                .accept_message(s, &m, &quota(1_700_000_000_000 + i as i64, -1.0, 1e9, 1))
                .await;
            assert_eq!(r.unwrap(), Acceptance::Accepted);
        }
    }

    /// The WAL's checkpoint sequence number, which SQLite raises each time
    /// it starts the WAL over.
    fn wal_restarts(dir: &Path) -> u32 {
        let wal = std::fs::read(dir.join("sesame.db-wal")).unwrap_or_default();
        wal.get(12..16)
            .map_or(0, |b| u32::from_be_bytes(b.try_into().unwrap()))
    }

    /// The checkpoint thread copies committed pages into the database
    /// while the WAL is far below the writer's own automatic checkpoint.
    #[tokio::test]
    async fn the_checkpoint_thread_copies_the_wal_beside_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::conformance::scope("222222222222", "us-east-1");
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let db = dir.path().join("sesame.db");
        let before = std::fs::metadata(&db).unwrap().len();
        // About 80 pages of messages: nothing near 16,000.
        accept_many(&store, &s, 0, 40, 8 * 1024).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut after = before;
        while after < before + 40 * 8 * 1024 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            after = std::fs::metadata(&db).unwrap().len();
        }
        assert!(
            after >= before + 40 * 8 * 1024,
            "the database file grew from {before} to {after} bytes only"
        );
        store.close().await;
    }

    /// Under writes that never pause, the WAL still starts over (the
    /// checkpointer hands the writer the tail) and stays far below the
    /// safety net's length.
    #[tokio::test]
    async fn the_wal_starts_over_under_continuous_writes() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::conformance::scope("232323232323", "us-east-1");
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let frame = 4096 + 24;
        let mut longest = 0;
        let (mut sent, start) = (0, wal_restarts(dir.path()));
        // Each message is about four pages; 4,000 pages is 1,000 of them.
        while wal_restarts(dir.path()) < start + 2 && sent < 20_000 {
            accept_many(&store, &s, sent, 50, 12 * 1024).await;
            sent += 50;
            let len = std::fs::metadata(dir.path().join("sesame.db-wal")).map_or(0, |m| m.len());
            longest = longest.max(len);
        }
        assert!(
            wal_restarts(dir.path()) >= start + 2,
            "the WAL did not start over in {sent} messages"
        );
        assert!(
            longest < writer::WAL_HARD_LIMIT as u64 * frame,
            "the WAL grew to {longest} bytes"
        );
        store.close().await;
    }

    /// Deliveries are indexed by message only while queued, and an
    /// operator's retry or drop of a message searches that index (a drop
    /// finds deliveries in flight through `deliveries_sending`).
    #[tokio::test]
    async fn per_message_queue_operations_search_the_partial_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let (index,): (String,) =
            sqlx::query_as("SELECT sql FROM sqlite_schema WHERE name = 'deliveries_message'")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert!(index.ends_with("WHERE state = 'queued'"), "{index}");
        for sql in [RETRY_MESSAGE, DROP_MESSAGE] {
            let plan: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                    .fetch_all(&store.pool)
                    .await
                    .unwrap();
            assert!(
                plan.iter()
                    .any(|(.., d)| d.contains("INDEX deliveries_message (message_id=?)")),
                "{sql}: {plan:?}"
            );
            if sql == DROP_MESSAGE {
                // Deliveries in flight through their own partial index, not
                // a scan of the table.
                assert!(
                    plan.iter()
                        .any(|(.., d)| d.contains("USING INDEX deliveries_sending")),
                    "{sql}: {plan:?}"
                );
                assert!(
                    !plan.iter().any(|(.., d)| d == "SCAN deliveries"),
                    "{sql}: {plan:?}"
                );
            }
        }
        store.close().await;
    }

    #[tokio::test]
    async fn a_claimed_delivery_whose_message_is_gone_ends_failed() {
        use crate::conformance::{message, quota, scope};
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let s = scope("212121212121", "us-east-1");
        let t = 1_700_000_000_000;
        for id in ["kept", "gone"] {
            store
                .accept_message(&s, &message(id, &["a@z.com"]), &quota(t, -1.0, 1000.0, 1))
                .await
                .unwrap();
        }
        // Removed behind the store's back (clear_messages takes the
        // deliveries with it), as an operator's sqlite3 might.
        sqlx::query("DELETE FROM messages WHERE id = 'gone'")
            .execute(&store.pool)
            .await
            .unwrap();
        let claimed = store
            .claim_deliveries(t + 60_000, t + 120_000, 10)
            .await
            .unwrap();
        let ids: Vec<&str> = claimed.iter().map(|d| d.message_id.as_str()).collect();
        assert_eq!(ids, ["kept"]);
        let states: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT message_id, state, last_error FROM deliveries ORDER BY message_id",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap();
        assert_eq!(
            states,
            [
                (
                    "gone".into(),
                    "failed".into(),
                    Some("the message was deleted before delivery".into())
                ),
                ("kept".into(), "sending".into(), None),
            ]
        );
        store.close().await;
    }

    #[tokio::test]
    async fn data_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        crate::conformance::seed_one(&store).await;
        store.close().await;
        let again = SqliteStore::open(dir.path()).await.unwrap();
        crate::conformance::check_seeded(&again).await;
    }
}
