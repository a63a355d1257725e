//! The embedded backend: SQLite in the data directory, WAL mode, migrations
//! applied at open. Several processes (the server and operator commands) may
//! open the same file; SQLite serialises their writes.
//!
//! # Layout
//! - this file: opening, the `Store` impl (each method calls the one of the
//!   same name in its concern's file), errors, JSON columns;
//! - `accounts.rs`, `identities.rs`, `messages.rs`, `queue.rs`,
//!   `templates.rs`: the reads and writes of each concern (through sqlx);
//! - `writer.rs` (and `writer/`): the writer thread, which takes every
//!   acceptance and queue write (rusqlite);
//! - `tests.rs`: the backend's own tests (the conformance suite among them).

use crate::cache::ReadCache;
use crate::{
    AcceptanceDelivery, Created, IdentityQuery, Insert, Listed, Result, Store, StoreError,
};
pub(crate) use crate::{from_json, scope_from, to_json};
use async_trait::async_trait;
use sesame_model::sns::{Subscription, Topic, TopicDelivery, TopicDeliveryOutcome, TopicMessage};
use sesame_model::suppression::{Reason, SuppressedDestination, SuppressionQuery};
use sesame_model::{
    Acceptance, AccessKey, Account, AccountId, ConfigurationSet, CustomVerificationTemplate,
    DeliveryState, DeliveryUpdate, Event, EventFilter, Identity, MessageFilter, Millis, NewMessage,
    QueueEntry, QueueSummary, QueuedDelivery, QuotaCheck, Region, Rejection, Scope, SendStatPoint,
    StoredMessage, Template,
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
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

mod accounts;
mod configuration_sets;
mod identities;
mod messages;
mod queue;
mod sns;
mod suppression;
mod templates;
#[cfg(test)]
mod tests;
mod writer;

use messages::*;
use templates::*;

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
    /// Notified after a commit that queued topic deliveries.
    sns_queued: Arc<Notify>,
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
            sns_queued: Arc::new(Notify::new()),
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
}

#[async_trait]
impl Store for SqliteStore {
    async fn put_access_key(&self, key: &AccessKey) -> Result<()> {
        SqliteStore::put_access_key(self, key).await
    }

    async fn get_access_key(&self, id: &str) -> Result<Option<AccessKey>> {
        SqliteStore::get_access_key(self, id).await
    }

    async fn insert_identity(
        &self,
        scope: &Scope,
        identity: &Identity,
        limit: u32,
    ) -> Result<Insert> {
        SqliteStore::insert_identity(self, scope, identity, limit).await
    }

    async fn get_identity(&self, scope: &Scope, name: &str) -> Result<Option<Identity>> {
        SqliteStore::get_identity(self, scope, name).await
    }

    async fn find_identity_by_link(&self, token: &str) -> Result<Option<(Scope, Identity)>> {
        SqliteStore::find_identity_by_link(self, token).await
    }

    async fn get_identities(&self, scope: &Scope, names: &[String]) -> Result<Vec<Arc<Identity>>> {
        SqliteStore::get_identities(self, scope, names).await
    }

    async fn update_identity(&self, scope: &Scope, identity: &Identity) -> Result<bool> {
        SqliteStore::update_identity(self, scope, identity).await
    }

    async fn update_identities(&self, identities: &[(Scope, Identity)]) -> Result<Vec<bool>> {
        SqliteStore::update_identities(self, identities).await
    }

    async fn list_all_identities(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Scope, Identity)>> {
        SqliteStore::list_all_identities(self, after, limit).await
    }

    async fn dkim_key_by_token(&self, token: &str) -> Result<Option<String>> {
        SqliteStore::dkim_key_by_token(self, token).await
    }

    async fn delete_identity(&self, scope: &Scope, name: &str) -> Result<bool> {
        SqliteStore::delete_identity(self, scope, name).await
    }

    async fn list_identities(
        &self,
        scope: &Scope,
        query: &IdentityQuery,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Listed>> {
        SqliteStore::list_identities(self, scope, query, after, limit).await
    }

    async fn get_account(&self, scope: &Scope) -> Result<Option<Account>> {
        SqliteStore::get_account(self, scope).await
    }

    async fn save_account(&self, scope: &Scope, account: &Account) -> Result<bool> {
        SqliteStore::save_account(self, scope, account).await
    }

    async fn sent_last_24h(&self, scope: &Scope, now: Millis) -> Result<u64> {
        SqliteStore::sent_last_24h(self, scope, now).await
    }

    async fn send_statistics(&self, scope: &Scope, since: Millis) -> Result<Vec<SendStatPoint>> {
        SqliteStore::send_statistics(self, scope, since).await
    }

    async fn accept_message(
        &self,
        scope: &Scope,
        message: &NewMessage,
        quota: &QuotaCheck,
    ) -> Result<Acceptance> {
        SqliteStore::accept_message(self, scope, message, quota).await
    }

    async fn list_messages(&self, filter: &MessageFilter) -> Result<Vec<StoredMessage>> {
        SqliteStore::list_messages(self, filter).await
    }

    async fn get_message(&self, id: &str) -> Result<Option<StoredMessage>> {
        SqliteStore::get_message(self, id).await
    }

    async fn clear_messages(&self) -> Result<u64> {
        SqliteStore::clear_messages(self).await
    }

    fn queue_signal(&self) -> Arc<Notify> {
        SqliteStore::queue_signal(self)
    }

    fn deliver_on_acceptance(&self, hook: Arc<dyn AcceptanceDelivery>) {
        SqliteStore::deliver_on_acceptance(self, hook)
    }

    async fn claim_deliveries(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> Result<Vec<QueuedDelivery>> {
        SqliteStore::claim_deliveries(self, now, lease_until, limit).await
    }

    async fn finish_deliveries(
        &self,
        updates: Vec<DeliveryUpdate>,
        events: Vec<Event>,
    ) -> Result<()> {
        SqliteStore::finish_deliveries(self, updates, events).await
    }

    async fn requeue_in_flight(&self, now: Millis) -> Result<u64> {
        SqliteStore::requeue_in_flight(self, now).await
    }

    fn next_delivery_due_hint(&self) -> Option<Option<Millis>> {
        SqliteStore::next_delivery_due_hint(self)
    }

    async fn next_delivery_due(&self) -> Result<Option<Millis>> {
        SqliteStore::next_delivery_due(self).await
    }

    async fn queue_summary(&self) -> Result<QueueSummary> {
        SqliteStore::queue_summary(self).await
    }

    async fn list_queue(
        &self,
        state: Option<DeliveryState>,
        limit: u32,
    ) -> Result<Vec<QueueEntry>> {
        SqliteStore::list_queue(self, state, limit).await
    }

    async fn queue_depth(&self) -> Result<(u64, u64)> {
        SqliteStore::queue_depth(self).await
    }

    async fn retry_message(&self, message_id: &str, now: Millis) -> Result<u64> {
        SqliteStore::retry_message(self, message_id, now).await
    }

    async fn drop_message(&self, message_id: &str, now: Millis) -> Result<u64> {
        SqliteStore::drop_message(self, message_id, now).await
    }

    async fn list_events(&self, filter: &EventFilter) -> Result<Vec<Event>> {
        SqliteStore::list_events(self, filter).await
    }

    async fn record_rejection(&self, scope: &Scope, rejection: &Rejection) -> Result<()> {
        SqliteStore::record_rejection(self, scope, rejection).await
    }

    async fn list_accounts(
        &self,
        after: Option<&Scope>,
        limit: u32,
    ) -> Result<Vec<(Scope, Account)>> {
        SqliteStore::list_accounts(self, after, limit).await
    }

    async fn list_rejections(&self, scope: &Scope, limit: u32) -> Result<Vec<Rejection>> {
        SqliteStore::list_rejections(self, scope, limit).await
    }

    async fn record_events(&self, events: &[Event]) -> Result<()> {
        SqliteStore::record_events(self, events).await
    }

    async fn find_rejection(&self, request_id: &str) -> Result<Option<(Scope, Rejection)>> {
        SqliteStore::find_rejection(self, request_id).await
    }

    async fn insert_template(&self, scope: &Scope, t: &Template, limit: u32) -> Result<Created> {
        SqliteStore::insert_template(self, scope, t, limit).await
    }

    async fn get_template(&self, scope: &Scope, name: &str) -> Result<Option<Template>> {
        SqliteStore::get_template(self, scope, name).await
    }

    async fn update_template(&self, scope: &Scope, t: &Template) -> Result<bool> {
        SqliteStore::update_template(self, scope, t).await
    }

    async fn delete_template(&self, scope: &Scope, name: &str) -> Result<bool> {
        SqliteStore::delete_template(self, scope, name).await
    }

    async fn list_templates(
        &self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Template)>> {
        SqliteStore::list_templates(self, scope, after, limit).await
    }

    async fn insert_cv_template(
        &self,
        scope: &Scope,
        t: &CustomVerificationTemplate,
        limit: u32,
    ) -> Result<Created> {
        SqliteStore::insert_cv_template(self, scope, t, limit).await
    }

    async fn get_cv_template(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<CustomVerificationTemplate>> {
        SqliteStore::get_cv_template(self, scope, name).await
    }

    async fn update_cv_template(
        &self,
        scope: &Scope,
        t: &CustomVerificationTemplate,
    ) -> Result<bool> {
        SqliteStore::update_cv_template(self, scope, t).await
    }

    async fn delete_cv_template(&self, scope: &Scope, name: &str) -> Result<bool> {
        SqliteStore::delete_cv_template(self, scope, name).await
    }

    async fn list_cv_templates(
        &self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, CustomVerificationTemplate)>> {
        SqliteStore::list_cv_templates(self, scope, after, limit).await
    }

    async fn insert_configuration_set(
        &self,
        scope: &Scope,
        set: &ConfigurationSet,
        limit: u32,
    ) -> Result<Created> {
        SqliteStore::insert_configuration_set(self, scope, set, limit).await
    }

    async fn get_configuration_set(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<ConfigurationSet>> {
        SqliteStore::get_configuration_set(self, scope, name).await
    }

    async fn update_configuration_set(
        &self,
        scope: &Scope,
        set: &ConfigurationSet,
    ) -> Result<bool> {
        SqliteStore::update_configuration_set(self, scope, set).await
    }

    async fn delete_configuration_set(&self, scope: &Scope, name: &str) -> Result<bool> {
        SqliteStore::delete_configuration_set(self, scope, name).await
    }

    async fn list_configuration_sets(
        &self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, ConfigurationSet)>> {
        SqliteStore::list_configuration_sets(self, scope, after, limit).await
    }

    async fn insert_topic(&self, scope: &Scope, topic: &Topic, limit: u32) -> Result<Created> {
        SqliteStore::insert_topic(self, scope, topic, limit).await
    }
    async fn get_topic(&self, arn: &str) -> Result<Option<(Scope, Topic)>> {
        SqliteStore::get_topic(self, arn).await
    }
    async fn update_topic(&self, topic: &Topic) -> Result<bool> {
        SqliteStore::update_topic(self, topic).await
    }
    async fn delete_topic(&self, arn: &str) -> Result<bool> {
        SqliteStore::delete_topic(self, arn).await
    }
    async fn list_topics(
        &self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Topic)>> {
        SqliteStore::list_topics(self, scope, after, limit).await
    }
    async fn insert_subscription(
        &self,
        scope: &Scope,
        sub: &Subscription,
        limit: u32,
        confirmation: Option<&TopicMessage>,
        now: Millis,
    ) -> Result<Created> {
        SqliteStore::insert_subscription(self, scope, sub, limit, confirmation, now).await
    }
    async fn get_subscription(&self, arn: &str) -> Result<Option<(Scope, Subscription)>> {
        SqliteStore::get_subscription(self, arn).await
    }
    async fn update_subscription(
        &self,
        sub: &Subscription,
        message: Option<&TopicMessage>,
        now: Millis,
    ) -> Result<bool> {
        SqliteStore::update_subscription(self, sub, message, now).await
    }
    async fn delete_subscription(
        &self,
        arn: &str,
        farewell: Option<&TopicMessage>,
        now: Millis,
    ) -> Result<bool> {
        SqliteStore::delete_subscription(self, arn, farewell, now).await
    }
    async fn list_subscriptions(
        &self,
        scope: &Scope,
        topic_arn: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Subscription)>> {
        SqliteStore::list_subscriptions(self, scope, topic_arn, after, limit).await
    }
    async fn publish_messages(
        &self,
        messages: &[TopicMessage],
        cursor: Option<(&str, i64)>,
        now: Millis,
    ) -> Result<u64> {
        SqliteStore::publish_messages(self, messages, cursor, now).await
    }
    fn topic_signal(&self) -> Arc<Notify> {
        self.sns_queued.clone()
    }
    async fn claim_topic_deliveries(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> Result<Vec<TopicDelivery>> {
        SqliteStore::claim_topic_deliveries(self, now, lease_until, limit).await
    }
    async fn finish_topic_deliveries(
        &self,
        outcomes: &[(i64, TopicDeliveryOutcome)],
        now: Millis,
    ) -> Result<()> {
        SqliteStore::finish_topic_deliveries(self, outcomes, now).await
    }
    async fn requeue_topic_deliveries(&self, now: Millis) -> Result<u64> {
        SqliteStore::requeue_topic_deliveries(self, now).await
    }
    async fn next_topic_delivery_due(&self) -> Result<Option<Millis>> {
        SqliteStore::next_topic_delivery_due(self).await
    }
    async fn cursor(&self, name: &str) -> Result<Option<i64>> {
        SqliteStore::cursor(self, name).await
    }
    async fn events_after(&self, seq: i64, limit: u32) -> Result<Vec<(i64, Event)>> {
        SqliteStore::events_after(self, seq, limit).await
    }
    async fn get_setting(&self, name: &str) -> Result<Option<String>> {
        SqliteStore::get_setting(self, name).await
    }
    async fn put_setting(&self, name: &str, value: &str, now: Millis) -> Result<()> {
        SqliteStore::put_setting(self, name, value, now).await
    }
    async fn take_lease(&self, name: &str, now: Millis, until: Millis) -> Result<bool> {
        SqliteStore::take_lease(self, name, now, until).await
    }
    async fn purge(&self, before: Millis, limit: u32) -> Result<crate::Purged> {
        SqliteStore::purge(self, before, limit).await
    }
    async fn release_lease(&self, name: &str) -> Result<()> {
        SqliteStore::release_lease(self, name).await
    }
    async fn close(&self) {
        SqliteStore::close(self).await
    }
    async fn get_own_key(&self, name: &str) -> Result<Option<String>> {
        SqliteStore::get_own_key(self, name).await
    }
    async fn put_own_key(&self, name: &str, data: &str, now: Millis) -> Result<String> {
        SqliteStore::put_own_key(self, name, data, now).await
    }
    async fn put_suppressed(&self, scope: &Scope, d: &SuppressedDestination) -> Result<()> {
        SqliteStore::put_suppressed(self, scope, d).await
    }
    async fn get_suppressed(
        &self,
        scope: &Scope,
        address: &str,
    ) -> Result<Option<SuppressedDestination>> {
        SqliteStore::get_suppressed(self, scope, address).await
    }
    async fn delete_suppressed(&self, scope: &Scope, address: &str) -> Result<bool> {
        SqliteStore::delete_suppressed(self, scope, address).await
    }
    async fn list_suppressed(
        &self,
        scope: &Scope,
        q: &SuppressionQuery,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, SuppressedDestination)>> {
        SqliteStore::list_suppressed(self, scope, q, after, limit).await
    }
    async fn suppressed_among(
        &self,
        scope: &Scope,
        addresses: &[String],
        reasons: &[Reason],
    ) -> Result<Vec<String>> {
        SqliteStore::suppressed_among(self, scope, addresses, reasons).await
    }
}
