//! The shared backend: PostgreSQL, which several Sesame nodes use at once.
//! Migrations (`migrations/postgres/`) run at open, under sqlx's advisory
//! lock, so nodes starting together migrate once.
//!
//! What several nodes need, and where it is:
//! - **Quotas** are decided in the database: an acceptance locks its
//!   scope's `quota_state` row (`FOR UPDATE`), reads the scope's last 24
//!   hours from `send_ledger` and its rate bucket from the row, and decides
//!   under `sesame_model::quota`'s rules (`accept.rs`).
//! - **Group commit**: acceptances go to one writer task per node, which
//!   takes the waiting ones into one transaction (`accept.rs`).
//! - **The queue** is claimed with `FOR UPDATE SKIP LOCKED` and leases; a
//!   claim records its node (`claimed_by`), and a node starting again puts
//!   back only its own claims (`queue.rs`). Another node's claims come back
//!   when their leases run out.
//! - **Events** are numbered in commit order: every transaction that
//!   records events takes one advisory lock just before it inserts them,
//!   so that a reader following `events.seq` (event publishing) never
//!   passes an event committed late.
//! - **Background work** takes named leases (`take_lease`).
//!
//! There is no read cache: another node may have changed any row.
//!
//! # Layout
//! - this file: opening, the `Store` impl (each method calls the one of the
//!   same name in its concern's file), and SQL helpers;
//! - `accounts.rs`: access keys, accounts, rejections, settings, own keys,
//!   leases;
//! - `identities.rs`, `named.rs` (templates, custom verification
//!   templates, configuration sets), `suppression.rs`, `sns.rs`;
//! - `accept.rs`: the writer task, acceptances and the mailbox;
//! - `queue.rs`: the delivery queue and events.

use crate::{
    AcceptanceDelivery, Created, IdentityQuery, Insert, Listed, Result, Store, StoreError,
};
use crate::{from_json, scope_from, to_json};
use async_trait::async_trait;
use sesame_model::sns::{Subscription, Topic, TopicDelivery, TopicDeliveryOutcome, TopicMessage};
use sesame_model::suppression::{Reason, SuppressedDestination, SuppressionQuery};
use sesame_model::{
    Acceptance, AccessKey, Account, ConfigurationSet, CustomVerificationTemplate, DeliveryState,
    DeliveryUpdate, Event, EventFilter, Identity, MessageFilter, Millis, NewMessage, QueueEntry,
    QueueSummary, QueuedDelivery, QuotaCheck, Rejection, Scope, SendStatPoint, StoredMessage,
    Template,
};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Row};
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};

mod accept;
mod accounts;
mod identities;
mod named;
mod queue;
mod sns;
mod suppression;
#[cfg(test)]
mod tests;

/// How long a node's registration lasts unless renewed, and how often its
/// holder renews it.
const NODE_LEASE_MS: Millis = 10_000;
const NODE_RENEW: Duration = Duration::from_secs(3);

/// The advisory lock every transaction that records events holds from its
/// first event to its commit (see the module's notes).
const EVENTS_LOCK: i64 = 0x5e5a_3e01;

pub struct PgStore {
    pool: PgPool,
    /// This node's name: its claims and its leases.
    node: String,
    /// This process's own mark, for the node's registration.
    instance: String,
    /// The task that renews the registration, and its stop signal.
    registration: Mutex<Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>>,
    /// Hands acceptances to the writer task; `None` once closed.
    writer: Mutex<Option<mpsc::Sender<accept::AcceptJob>>>,
    /// The writer task, awaited on close.
    writer_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Notified after a commit that queued deliveries.
    queued: Arc<Notify>,
    /// Notified after a commit that queued topic deliveries.
    sns_queued: Arc<Notify>,
    /// Deliveries that acceptances make by themselves.
    on_acceptance: Arc<RwLock<Option<Arc<dyn AcceptanceDelivery>>>>,
}

impl PgStore {
    /// Connects to `url`, migrates the schema and starts the writer task.
    /// `node` names this node in claims and leases: each node sharing the
    /// database needs its own, the same across its restarts.
    pub async fn open(url: &str, node: &str) -> Result<Self> {
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Database(format!("bad database URL: {e}")))?
            .application_name(&format!("sesame {node}"));
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        let queued = Arc::new(Notify::new());
        let on_acceptance: Arc<RwLock<Option<Arc<dyn AcceptanceDelivery>>>> = Default::default();
        let (tx, task) = accept::spawn(pool.clone(), queued.clone(), on_acceptance.clone());
        Ok(Self {
            pool,
            node: node.to_owned(),
            instance: format!(
                "{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default()
            ),
            registration: Mutex::new(None),
            writer: Mutex::new(Some(tx)),
            writer_task: Mutex::new(Some(task)),
            queued,
            sns_queued: Arc::new(Notify::new()),
            on_acceptance,
        })
    }

    /// Takes the node's registration (`node:NAME` in `leases`, held by this
    /// process's mark), waiting up to `patience` for one that another
    /// instance holds to run out, and starts renewing it.
    pub async fn hold_node_within(&self, patience: Duration) -> Result<()> {
        let name = format!("node:{}", self.node);
        let deadline = std::time::Instant::now() + patience;
        let mut told = false;
        loop {
            let now = wall_clock();
            if accounts::take(&self.pool, &name, &self.instance, now, now + NODE_LEASE_MS).await? {
                break;
            }
            if std::time::Instant::now() >= deadline {
                return Err(StoreError::Database(format!(
                    "another node named {} is running on this database: give each node its own \
                     --node-name",
                    self.node
                )));
            }
            if !told {
                tracing::info!(node = %self.node,
                    "waiting for the node's previous registration to run out (a crashed instance?)");
                told = true;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let (stop, mut stopped) = oneshot::channel();
        let (pool, instance, node) = (self.pool.clone(), self.instance.clone(), self.node.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(NODE_RENEW) => {}
                    _ = &mut stopped => break,
                }
                let now = wall_clock();
                match accounts::take(&pool, &name, &instance, now, now + NODE_LEASE_MS).await {
                    Ok(true) => {}
                    Ok(false) => tracing::error!(%node,
                        "another process took this node's registration: two nodes share the name"),
                    Err(e) => {
                        tracing::warn!(error = %e, %node, "could not renew the node's registration")
                    }
                }
            }
            let _ = sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
                .bind(&name)
                .bind(&instance)
                .execute(&pool)
                .await;
        });
        if let Ok(mut r) = self.registration.lock() {
            *r = Some((stop, task));
        }
        Ok(())
    }

    /// Stops the writer after the acceptances already handed to it, gives
    /// up the node's registration, then closes the pool.
    pub async fn close(&self) {
        let registration = self.registration.lock().ok().and_then(|mut r| r.take());
        if let Some((stop, task)) = registration {
            let _ = stop.send(());
            let _ = task.await;
        }
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
        let task = self.writer_task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
        self.pool.close().await;
    }
}

/// A statement's text with `$n` placeholders numbered as values are added:
/// for the few queries whose conditions depend on a filter.
struct Sql {
    text: String,
    n: usize,
}

impl Sql {
    fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            n: 0,
        }
    }
    /// Appends `fragment`, each `?` in it becoming the next placeholder.
    fn push(&mut self, fragment: &str) -> &mut Self {
        for part in fragment.split_inclusive('?') {
            match part.strip_suffix('?') {
                Some(p) => {
                    self.n += 1;
                    self.text.push_str(p);
                    self.text.push_str(&format!("${}", self.n));
                }
                None => self.text.push_str(part),
            }
        }
        self
    }
}

/// Milliseconds since the epoch, for the node's registration: nodes'
/// leases compare their clocks, which must agree (NTP).
fn wall_clock() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or_default()
}

fn scope_of(r: &PgRow) -> Result<Scope> {
    scope_from(r.try_get("account_id")?, r.try_get("region")?)
}

fn count(n: i64) -> u64 {
    n.max(0) as u64
}

#[async_trait]
impl Store for PgStore {
    async fn put_access_key(&self, key: &AccessKey) -> Result<()> {
        PgStore::put_access_key(self, key).await
    }
    async fn get_access_key(&self, id: &str) -> Result<Option<AccessKey>> {
        PgStore::get_access_key(self, id).await
    }
    async fn insert_identity(
        &self,
        scope: &Scope,
        identity: &Identity,
        limit: u32,
    ) -> Result<Insert> {
        PgStore::insert_identity(self, scope, identity, limit).await
    }
    async fn get_identity(&self, scope: &Scope, name: &str) -> Result<Option<Identity>> {
        PgStore::get_identity(self, scope, name).await
    }
    async fn find_identity_by_link(&self, token: &str) -> Result<Option<(Scope, Identity)>> {
        PgStore::find_identity_by_link(self, token).await
    }
    async fn get_identities(&self, scope: &Scope, names: &[String]) -> Result<Vec<Arc<Identity>>> {
        PgStore::get_identities(self, scope, names).await
    }
    async fn update_identity(&self, scope: &Scope, identity: &Identity) -> Result<bool> {
        let written = self
            .update_identities(&[(scope.clone(), identity.clone())])
            .await?;
        Ok(written[0])
    }
    async fn update_identities(&self, identities: &[(Scope, Identity)]) -> Result<Vec<bool>> {
        PgStore::update_identities(self, identities).await
    }
    async fn list_all_identities(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Scope, Identity)>> {
        PgStore::list_all_identities(self, after, limit).await
    }
    async fn dkim_key_by_token(&self, token: &str) -> Result<Option<String>> {
        PgStore::dkim_key_by_token(self, token).await
    }
    async fn delete_identity(&self, scope: &Scope, name: &str) -> Result<bool> {
        PgStore::delete_identity(self, scope, name).await
    }
    async fn list_identities(
        &self,
        scope: &Scope,
        query: &IdentityQuery,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Listed>> {
        PgStore::list_identities(self, scope, query, after, limit).await
    }
    async fn list_accounts(
        &self,
        after: Option<&Scope>,
        limit: u32,
    ) -> Result<Vec<(Scope, Account)>> {
        PgStore::list_accounts(self, after, limit).await
    }
    async fn get_account(&self, scope: &Scope) -> Result<Option<Account>> {
        PgStore::get_account(self, scope).await
    }
    async fn save_account(&self, scope: &Scope, account: &Account) -> Result<bool> {
        PgStore::save_account(self, scope, account).await
    }
    async fn sent_last_24h(&self, scope: &Scope, now: Millis) -> Result<u64> {
        PgStore::sent_last_24h(self, scope, now).await
    }
    async fn send_statistics(&self, scope: &Scope, since: Millis) -> Result<Vec<SendStatPoint>> {
        PgStore::send_statistics(self, scope, since).await
    }
    async fn accept_message(
        &self,
        scope: &Scope,
        message: &NewMessage,
        quota: &QuotaCheck,
    ) -> Result<Acceptance> {
        PgStore::accept_message(self, scope, message, quota).await
    }
    async fn list_messages(&self, filter: &MessageFilter) -> Result<Vec<StoredMessage>> {
        PgStore::list_messages(self, filter).await
    }
    async fn get_message(&self, id: &str) -> Result<Option<StoredMessage>> {
        PgStore::get_message(self, id).await
    }
    async fn clear_messages(&self) -> Result<u64> {
        PgStore::clear_messages(self).await
    }
    fn queue_signal(&self) -> Arc<Notify> {
        self.queued.clone()
    }
    fn deliver_on_acceptance(&self, hook: Arc<dyn AcceptanceDelivery>) {
        if let Ok(mut h) = self.on_acceptance.write() {
            *h = Some(hook);
        }
    }
    async fn claim_deliveries(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> Result<Vec<QueuedDelivery>> {
        PgStore::claim_deliveries(self, now, lease_until, limit).await
    }
    async fn finish_deliveries(
        &self,
        updates: Vec<DeliveryUpdate>,
        events: Vec<Event>,
    ) -> Result<()> {
        PgStore::finish_deliveries(self, updates, events).await
    }
    async fn requeue_in_flight(&self, now: Millis) -> Result<u64> {
        PgStore::requeue_in_flight(self, now).await
    }
    async fn next_delivery_due(&self) -> Result<Option<Millis>> {
        PgStore::next_delivery_due(self).await
    }
    async fn queue_summary(&self) -> Result<QueueSummary> {
        PgStore::queue_summary(self).await
    }
    async fn queue_depth(&self) -> Result<(u64, u64)> {
        PgStore::queue_depth(self).await
    }
    async fn list_queue(
        &self,
        state: Option<DeliveryState>,
        limit: u32,
    ) -> Result<Vec<QueueEntry>> {
        PgStore::list_queue(self, state, limit).await
    }
    async fn retry_message(&self, message_id: &str, now: Millis) -> Result<u64> {
        PgStore::retry_message(self, message_id, now).await
    }
    async fn drop_message(&self, message_id: &str, now: Millis) -> Result<u64> {
        PgStore::drop_message(self, message_id, now).await
    }
    async fn list_events(&self, filter: &EventFilter) -> Result<Vec<Event>> {
        PgStore::list_events(self, filter).await
    }
    async fn record_events(&self, events: &[Event]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        queue::insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }
    async fn record_rejection(&self, scope: &Scope, rejection: &Rejection) -> Result<()> {
        PgStore::record_rejection(self, scope, rejection).await
    }
    async fn list_rejections(&self, scope: &Scope, limit: u32) -> Result<Vec<Rejection>> {
        PgStore::list_rejections(self, scope, limit).await
    }
    async fn find_rejection(&self, request_id: &str) -> Result<Option<(Scope, Rejection)>> {
        PgStore::find_rejection(self, request_id).await
    }
    async fn insert_template(&self, scope: &Scope, t: &Template, limit: u32) -> Result<Created> {
        named::insert(
            &self.pool,
            named::Table::Templates,
            scope,
            &t.name,
            t.created_at,
            &to_json(t)?,
            limit,
        )
        .await
    }
    async fn get_template(&self, scope: &Scope, name: &str) -> Result<Option<Template>> {
        named::get(&self.pool, named::Table::Templates, scope, name).await
    }
    async fn update_template(&self, scope: &Scope, t: &Template) -> Result<bool> {
        named::update(
            &self.pool,
            named::Table::Templates,
            scope,
            &t.name,
            &to_json(t)?,
        )
        .await
    }
    async fn delete_template(&self, scope: &Scope, name: &str) -> Result<bool> {
        named::delete(&self.pool, named::Table::Templates, scope, name).await
    }
    async fn list_templates(
        &self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Template)>> {
        named::list(&self.pool, named::Table::Templates, scope, after, limit).await
    }
    async fn insert_cv_template(
        &self,
        scope: &Scope,
        t: &CustomVerificationTemplate,
        limit: u32,
    ) -> Result<Created> {
        named::insert(
            &self.pool,
            named::Table::CvTemplates,
            scope,
            &t.name,
            t.created_at,
            &to_json(t)?,
            limit,
        )
        .await
    }
    async fn get_cv_template(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<CustomVerificationTemplate>> {
        named::get(&self.pool, named::Table::CvTemplates, scope, name).await
    }
    async fn update_cv_template(
        &self,
        scope: &Scope,
        t: &CustomVerificationTemplate,
    ) -> Result<bool> {
        named::update(
            &self.pool,
            named::Table::CvTemplates,
            scope,
            &t.name,
            &to_json(t)?,
        )
        .await
    }
    async fn delete_cv_template(&self, scope: &Scope, name: &str) -> Result<bool> {
        named::delete(&self.pool, named::Table::CvTemplates, scope, name).await
    }
    async fn list_cv_templates(
        &self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, CustomVerificationTemplate)>> {
        named::list(&self.pool, named::Table::CvTemplates, scope, after, limit).await
    }
    async fn insert_configuration_set(
        &self,
        scope: &Scope,
        set: &ConfigurationSet,
        limit: u32,
    ) -> Result<Created> {
        named::insert(
            &self.pool,
            named::Table::ConfigurationSets,
            scope,
            &set.name,
            set.created_at,
            &to_json(set)?,
            limit,
        )
        .await
    }
    async fn get_configuration_set(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<ConfigurationSet>> {
        named::get(&self.pool, named::Table::ConfigurationSets, scope, name).await
    }
    async fn update_configuration_set(
        &self,
        scope: &Scope,
        set: &ConfigurationSet,
    ) -> Result<bool> {
        named::update(
            &self.pool,
            named::Table::ConfigurationSets,
            scope,
            &set.name,
            &to_json(set)?,
        )
        .await
    }
    async fn delete_configuration_set(&self, scope: &Scope, name: &str) -> Result<bool> {
        named::delete(&self.pool, named::Table::ConfigurationSets, scope, name).await
    }
    async fn list_configuration_sets(
        &self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, ConfigurationSet)>> {
        named::list(
            &self.pool,
            named::Table::ConfigurationSets,
            scope,
            after,
            limit,
        )
        .await
    }
    async fn insert_topic(&self, scope: &Scope, topic: &Topic, limit: u32) -> Result<Created> {
        PgStore::insert_topic(self, scope, topic, limit).await
    }
    async fn get_topic(&self, arn: &str) -> Result<Option<(Scope, Topic)>> {
        PgStore::get_topic(self, arn).await
    }
    async fn update_topic(&self, topic: &Topic) -> Result<bool> {
        PgStore::update_topic(self, topic).await
    }
    async fn delete_topic(&self, arn: &str) -> Result<bool> {
        PgStore::delete_topic(self, arn).await
    }
    async fn list_topics(
        &self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Topic)>> {
        PgStore::list_topics(self, scope, after, limit).await
    }
    async fn insert_subscription(
        &self,
        scope: &Scope,
        sub: &Subscription,
        limit: u32,
        confirmation: Option<&TopicMessage>,
        now: Millis,
    ) -> Result<Created> {
        PgStore::insert_subscription(self, scope, sub, limit, confirmation, now).await
    }
    async fn get_subscription(&self, arn: &str) -> Result<Option<(Scope, Subscription)>> {
        PgStore::get_subscription(self, arn).await
    }
    async fn update_subscription(
        &self,
        sub: &Subscription,
        message: Option<&TopicMessage>,
        now: Millis,
    ) -> Result<bool> {
        PgStore::update_subscription(self, sub, message, now).await
    }
    async fn delete_subscription(
        &self,
        arn: &str,
        farewell: Option<&TopicMessage>,
        now: Millis,
    ) -> Result<bool> {
        PgStore::delete_subscription(self, arn, farewell, now).await
    }
    async fn list_subscriptions(
        &self,
        scope: &Scope,
        topic_arn: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Subscription)>> {
        PgStore::list_subscriptions(self, scope, topic_arn, after, limit).await
    }
    async fn publish_messages(
        &self,
        messages: &[TopicMessage],
        cursor: Option<(&str, i64)>,
        now: Millis,
    ) -> Result<u64> {
        PgStore::publish_messages(self, messages, cursor, now).await
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
        PgStore::claim_topic_deliveries(self, now, lease_until, limit).await
    }
    async fn finish_topic_deliveries(
        &self,
        outcomes: &[(i64, TopicDeliveryOutcome)],
        now: Millis,
    ) -> Result<()> {
        PgStore::finish_topic_deliveries(self, outcomes, now).await
    }
    async fn requeue_topic_deliveries(&self, now: Millis) -> Result<u64> {
        PgStore::requeue_topic_deliveries(self, now).await
    }
    async fn next_topic_delivery_due(&self) -> Result<Option<Millis>> {
        PgStore::next_topic_delivery_due(self).await
    }
    async fn cursor(&self, name: &str) -> Result<Option<i64>> {
        PgStore::cursor(self, name).await
    }
    async fn events_after(&self, seq: i64, limit: u32) -> Result<Vec<(i64, Event)>> {
        PgStore::events_after(self, seq, limit).await
    }
    async fn get_setting(&self, name: &str) -> Result<Option<String>> {
        PgStore::get_setting(self, name).await
    }
    async fn put_setting(&self, name: &str, value: &str, now: Millis) -> Result<()> {
        PgStore::put_setting(self, name, value, now).await
    }
    async fn take_lease(&self, name: &str, now: Millis, until: Millis) -> Result<bool> {
        PgStore::take_lease(self, name, now, until).await
    }
    async fn purge(&self, before: Millis, limit: u32) -> Result<crate::Purged> {
        PgStore::purge(self, before, limit).await
    }
    async fn release_lease(&self, name: &str) -> Result<()> {
        PgStore::release_lease(self, name).await
    }
    async fn hold_node(&self) -> Result<()> {
        self.hold_node_within(Duration::from_millis(NODE_LEASE_MS as u64 + 2000))
            .await
    }
    async fn close(&self) {
        PgStore::close(self).await
    }
    async fn get_own_key(&self, name: &str) -> Result<Option<String>> {
        PgStore::get_own_key(self, name).await
    }
    async fn put_own_key(&self, name: &str, data: &str, now: Millis) -> Result<String> {
        PgStore::put_own_key(self, name, data, now).await
    }
    async fn put_suppressed(&self, scope: &Scope, d: &SuppressedDestination) -> Result<()> {
        PgStore::put_suppressed(self, scope, d).await
    }
    async fn get_suppressed(
        &self,
        scope: &Scope,
        address: &str,
    ) -> Result<Option<SuppressedDestination>> {
        PgStore::get_suppressed(self, scope, address).await
    }
    async fn delete_suppressed(&self, scope: &Scope, address: &str) -> Result<bool> {
        PgStore::delete_suppressed(self, scope, address).await
    }
    async fn list_suppressed(
        &self,
        scope: &Scope,
        q: &SuppressionQuery,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, SuppressedDestination)>> {
        PgStore::list_suppressed(self, scope, q, after, limit).await
    }
    async fn suppressed_among(
        &self,
        scope: &Scope,
        addresses: &[String],
        reasons: &[Reason],
    ) -> Result<Vec<String>> {
        PgStore::suppressed_among(self, scope, addresses, reasons).await
    }
}
