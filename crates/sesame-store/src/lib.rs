//! Storage: the [`Store`] trait the use cases talk to, and its backends.
//!
//! # Layout
//! - this file: the trait, its outcome types and [`StoreError`].
//! - [`sqlite`]: the embedded backend (SQLite in WAL mode, migrations in
//!   `migrations/sqlite/`).
//! - `cache`: the SQLite backend's read cache for accounts and identities,
//!   invalidated across processes through the `cache-epoch` file.
//! - [`conformance`]: one behavioural suite every backend must pass.
//!
//! Backends never perform network I/O inside a transaction, and each
//! method is atomic on its own: a check-then-write (like the identity limit)
//! happens in one transaction here, never across calls.

mod cache;
pub mod conformance;
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use sesame_model::sns::{Subscription, Topic, TopicDelivery, TopicDeliveryOutcome, TopicMessage};
use sesame_model::suppression::{Reason, SuppressedDestination, SuppressionQuery};
use sesame_model::{
    Acceptance, AccessKey, Account, ConfigurationSet, CustomVerificationTemplate, DeliveryState,
    DeliveryUpdate, Event, EventFilter, Identity, IdentityKind, MessageFilter, Millis, NewMessage,
    QueueEntry, QueueSummary, QueuedDelivery, QuotaCheck, Rejection, Scope, SendStatPoint,
    StoredMessage, Template, VerificationStatus,
};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Where the store is: `postgres://…` (or `postgresql://…`) names a
/// PostgreSQL database several nodes may share; anything else is SQLite's
/// `sesame.db` in the data directory.
pub enum Location<'a> {
    Sqlite(&'a std::path::Path),
    Postgres { url: &'a str, node: &'a str },
}

impl<'a> Location<'a> {
    /// The PostgreSQL database `database` names (a URL [`is_postgres_url`]
    /// accepts), else SQLite in `data_dir`.
    pub fn of(database: Option<&'a str>, data_dir: &'a std::path::Path, node: &'a str) -> Self {
        match database {
            Some(url) => Location::Postgres { url, node },
            None => Location::Sqlite(data_dir),
        }
    }
}

/// Whether `url` names a PostgreSQL database, the only kind `--database`
/// takes.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens (and migrates) the store at `location`.
pub async fn open(location: &Location<'_>) -> Result<std::sync::Arc<dyn Store>> {
    Ok(match location {
        Location::Sqlite(dir) => std::sync::Arc::new(SqliteStore::open(dir).await?),
        Location::Postgres { url, node } => std::sync::Arc::new(PgStore::open(url, node).await?),
    })
}

/// What went wrong in a store, in no backend's types: callers see what
/// failed, each backend turns its own errors into these (`sqlite.rs`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed: connection, I/O, a constraint, a timeout.
    #[error("database error: {0}")]
    Database(String),
    /// The schema could not be brought up to date.
    #[error("migration error: {0}")]
    Migrate(String),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    #[error("batched write failed: {0}")]
    Batch(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

// The database driver's errors, as the store's (both backends use sqlx).
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(e.to_string())
    }
}

// The JSON columns and the scope columns, as both backends store them.
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Takes or renews a lease (`$1` its name) for `$2` until `$4`, if it is
/// free, ran out before `$3`, or is `$2`'s already; a row comes back when
/// `$2` holds it. The same statement on both backends: SQLite reads `$N`
/// as numbered parameters.
pub(crate) const TAKE_LEASE: &str = "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $4)
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
     WHERE leases.holder = excluded.holder OR leases.until < $3
     RETURNING holder";

/// Retention's work (`Store::purge`), the same statements on both
/// backends, in the order of [`Purged::from`]'s counts: each is run with
/// `$1` the cutoff and `$2` the most rows it removes. Messages are checked
/// for unfinished deliveries in two conditions, each through a partial
/// index (SQLite's `deliveries_message` holds only queued deliveries,
/// `deliveries_sending` those in flight).
pub(crate) const PURGE: [&str; 7] = [
    "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries
       WHERE state IN ('delivered', 'failed') AND updated_at < $1 LIMIT $2)",
    "DELETE FROM messages WHERE seq IN (SELECT seq FROM messages m
       WHERE created_at < $1
         AND NOT EXISTS (SELECT 1 FROM deliveries d
           WHERE d.message_id = m.id AND d.state = 'queued')
         AND NOT EXISTS (SELECT 1 FROM deliveries d
           WHERE d.state = 'sending' AND d.message_id = m.id)
       LIMIT $2)",
    "DELETE FROM events WHERE seq IN (SELECT seq FROM events
       WHERE at < $1 AND seq <= COALESCE(
         (SELECT seq FROM cursors WHERE name = 'event-publishing'), 0)
       LIMIT $2)",
    "DELETE FROM sns_deliveries WHERE id IN (SELECT id FROM sns_deliveries
       WHERE state IN ('delivered', 'failed') AND updated_at < $1 LIMIT $2)",
    "DELETE FROM sns_messages WHERE id IN (SELECT id FROM sns_messages m
       WHERE created_at < $1 AND NOT EXISTS (SELECT 1 FROM sns_deliveries d
         WHERE d.message_id = m.id) LIMIT $2)",
    "DELETE FROM rejections WHERE seq IN (SELECT seq FROM rejections
       WHERE created_at < $1 LIMIT $2)",
    "DELETE FROM send_ledger WHERE (account_id, region, minute) IN (
       SELECT account_id, region, minute FROM send_ledger
       WHERE minute < $1 / 60000 LIMIT $2)",
];

impl From<[u64; 7]> for Purged {
    /// The counts of [`PURGE`]'s statements, in its order.
    fn from(n: [u64; 7]) -> Self {
        let [
            deliveries,
            messages,
            events,
            topic_deliveries,
            topic_messages,
            rejections,
            ledger,
        ] = n;
        Self {
            deliveries,
            messages,
            events,
            topic_deliveries,
            topic_messages,
            rejections,
            ledger,
        }
    }
}

/// The sending statistics from their two queries, on either backend:
/// recipients counted per 15-minute bucket (in minutes), and bounce and
/// complaint recipients per bucket (in ms) and event kind.
pub(crate) fn stat_points(
    sent: Vec<(i64, i64)>,
    outcomes: Vec<(i64, String, i64)>,
) -> Vec<SendStatPoint> {
    const QUARTER: i64 = 15 * 60_000;
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
        match sesame_model::EventKind::parse(&kind) {
            Some(sesame_model::EventKind::Bounce) => p.bounces += n.max(0) as u64,
            Some(sesame_model::EventKind::Complaint) => p.complaints += n.max(0) as u64,
            _ => {}
        }
    }
    points.into_values().collect()
}

/// The queue's counts by state, as both backends read them.
pub(crate) fn summary_of(counts: Vec<(String, i64)>) -> Result<QueueSummary> {
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
    Ok(s)
}

/// The Easy DKIM public key an identity publishes under its tokens, if it
/// signs with one.
pub(crate) fn published_dkim_key(identity: Identity) -> Option<String> {
    identity
        .dkim
        .key
        .filter(|_| identity.dkim.origin == sesame_model::DkimOrigin::AwsSes)
        .map(|k| k.public_spki_b64)
}

/// An identity kind as the `kind` column holds it.
pub(crate) fn kind_str(k: IdentityKind) -> &'static str {
    match k {
        IdentityKind::EmailAddress => "EmailAddress",
        IdentityKind::Domain => "Domain",
    }
}

pub(crate) fn scope_from(account: &str, region: &str) -> Result<Scope> {
    Ok(Scope::new(
        sesame_model::AccountId::parse(account).map_err(|e| StoreError::Corrupt(e.message))?,
        sesame_model::Region::parse(region).map_err(|e| StoreError::Corrupt(e.message))?,
    ))
}

/// Deliveries that storing a message makes by itself. In capture mode the
/// local mailbox is the stored message, so each recipient domain is
/// delivered the moment the message is accepted. A store given one (by
/// [`Store::deliver_on_acceptance`]) records such a delivery as delivered,
/// with its event, in the acceptance's own transaction, instead of queueing
/// it for the delivery engine to record later.
pub trait AcceptanceDelivery: Send + Sync {
    /// The Delivery event of an accepted message's delivery to `recipients`
    /// (all at `domain`), or `None` to queue that delivery as usual.
    fn delivered(
        &self,
        scope: &Scope,
        message: &NewMessage,
        domain: &str,
        recipients: &[String],
    ) -> Option<Event>;
    /// The events of deliveries made this way, once they are committed.
    fn recorded(&self, events: &[Event]);
}

/// What inserting an identity did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insert {
    Inserted,
    /// An identity of that name exists in the scope; it is returned as stored.
    Exists(Box<Identity>),
    /// The scope already holds `limit` identities.
    LimitReached,
}

/// What creating a named resource did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Created,
    Exists,
    LimitReached,
}

/// What one retention pass removed, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Finished deliveries (delivered or failed).
    pub deliveries: u64,
    /// Messages with no unfinished delivery left.
    pub messages: u64,
    /// Events already published.
    pub events: u64,
    /// Finished topic deliveries, and topic messages with none left.
    pub topic_deliveries: u64,
    pub topic_messages: u64,
    pub rejections: u64,
    /// Minutes of the quota ledger.
    pub ledger: u64,
}

impl std::ops::AddAssign for Purged {
    fn add_assign(&mut self, p: Purged) {
        self.deliveries += p.deliveries;
        self.messages += p.messages;
        self.events += p.events;
        self.topic_deliveries += p.topic_deliveries;
        self.topic_messages += p.topic_messages;
        self.rejections += p.rejections;
        self.ledger += p.ledger;
    }
}

impl Purged {
    pub fn total(&self) -> u64 {
        self.deliveries
            + self.messages
            + self.events
            + self.topic_deliveries
            + self.topic_messages
            + self.rejections
            + self.ledger
    }
}

/// Filters for listing identities; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityQuery {
    pub kind: Option<IdentityKind>,
    pub name_contains: Option<String>,
    pub status: Option<VerificationStatus>,
}

/// One stored identity with its listing position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub seq: i64,
    pub identity: Identity,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a new access key; an existing ID is replaced.
    async fn put_access_key(&self, key: &AccessKey) -> Result<()>;
    async fn get_access_key(&self, id: &str) -> Result<Option<AccessKey>>;

    /// Inserts `identity` unless one of that name exists or the scope holds
    /// `limit` identities already, atomically.
    async fn insert_identity(
        &self,
        scope: &Scope,
        identity: &Identity,
        limit: u32,
    ) -> Result<Insert>;
    async fn get_identity(&self, scope: &Scope, name: &str) -> Result<Option<Identity>>;
    /// The identity whose outstanding verification link has this token.
    async fn find_identity_by_link(&self, token: &str) -> Result<Option<(Scope, Identity)>>;
    /// The identities of these names that exist, in the order asked. Shared:
    /// every send reads them, most often from a cache, and only reads them.
    async fn get_identities(
        &self,
        scope: &Scope,
        names: &[String],
    ) -> Result<Vec<std::sync::Arc<Identity>>>;
    /// Replaces the stored identity if its version is still
    /// `identity.version`, bumping the version. `false` when it changed or
    /// vanished in between.
    async fn update_identity(&self, scope: &Scope, identity: &Identity) -> Result<bool>;
    /// Writes many identities in one transaction, each only if its version
    /// is still `identity.version` (bumping it); per identity, whether it
    /// was written.
    async fn update_identities(&self, identities: &[(Scope, Identity)]) -> Result<Vec<bool>>;
    /// Every identity of every scope after position `after`, in position
    /// order, at most `limit`: `(position, scope, identity)`. For the
    /// verifier's passes.
    async fn list_all_identities(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Scope, Identity)>>;
    /// The Easy DKIM public key (base64 SubjectPublicKeyInfo) published
    /// under `token`, if an identity whose DKIM is set up has that token.
    async fn dkim_key_by_token(&self, token: &str) -> Result<Option<String>>;
    /// `false` when there was nothing to delete.
    async fn delete_identity(&self, scope: &Scope, name: &str) -> Result<bool>;
    /// Identities after position `after`, in creation order, at most `limit`.
    async fn list_identities(
        &self,
        scope: &Scope,
        query: &IdentityQuery,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Listed>>;

    /// Stored accounts, by account and region, after `after` (an account
    /// and region), at most `limit`.
    async fn list_accounts(
        &self,
        after: Option<&Scope>,
        limit: u32,
    ) -> Result<Vec<(Scope, Account)>>;
    /// The account's settings in this region, if ever stored.
    async fn get_account(&self, scope: &Scope) -> Result<Option<Account>>;
    /// Stores `account` if its version is still `account.version` (0: not
    /// stored yet), bumping the version. `false` when another writer won.
    async fn save_account(&self, scope: &Scope, account: &Account) -> Result<bool>;

    /// Recipients counted toward the daily quota in the 24 hours before `now`.
    async fn sent_last_24h(&self, scope: &Scope, now: sesame_model::Millis) -> Result<u64>;
    /// Sending activity per 15-minute interval since `since`, oldest first:
    /// recipients counted, and the bounces and complaints recorded.
    async fn send_statistics(&self, scope: &Scope, since: Millis) -> Result<Vec<SendStatPoint>>;
    /// Checks the quotas and, if they allow it, stores the message, counts
    /// its recipients and queues one delivery per recipient domain, all in
    /// one transaction: concurrent senders can never together exceed a
    /// quota, and an accepted message is always queued.
    async fn accept_message(
        &self,
        scope: &Scope,
        message: &NewMessage,
        quota: &QuotaCheck,
    ) -> Result<Acceptance>;
    /// Captured messages, newest first.
    async fn list_messages(&self, filter: &MessageFilter) -> Result<Vec<StoredMessage>>;
    async fn get_message(&self, id: &str) -> Result<Option<StoredMessage>>;
    /// Empties the local mailbox; returns how many messages it held.
    async fn clear_messages(&self) -> Result<u64>;

    // ------------------------------------------------------------ delivery

    /// Notified whenever deliveries become due: new messages accepted, or a
    /// message retried by an operator. The delivery engine waits on it
    /// between polls.
    fn queue_signal(&self) -> std::sync::Arc<tokio::sync::Notify>;
    /// From now on, acceptances record the deliveries `hook` says storing
    /// makes (see [`AcceptanceDelivery`]), replacing any hook given before.
    /// A backend without this leaves them queued, and the delivery engine
    /// records them as it would any other.
    fn deliver_on_acceptance(&self, _hook: std::sync::Arc<dyn AcceptanceDelivery>) {}
    /// Claims up to `limit` queued deliveries due at `now`, oldest first,
    /// marking them `sending` until `lease_until`, with their messages.
    /// Deliveries whose lease ran out are claimable again.
    async fn claim_deliveries(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> Result<Vec<QueuedDelivery>>;
    /// Records attempts' results and their events in one transaction.
    async fn finish_deliveries(
        &self,
        updates: Vec<DeliveryUpdate>,
        events: Vec<Event>,
    ) -> Result<()>;
    /// Puts every `sending` delivery back in the queue, due now: for a
    /// server starting on a data directory only it uses. Returns how many.
    async fn requeue_in_flight(&self, now: Millis) -> Result<u64>;
    /// The earliest attempt due among queued deliveries.
    async fn next_delivery_due(&self) -> Result<Option<Millis>>;
    /// What `next_delivery_due` would say, from memory, for a store that
    /// keeps it there: never later than the truth for this process's
    /// writes, possibly earlier. `None` when the store does not know, and
    /// the caller asks `next_delivery_due`. The delivery engine asks this
    /// each time it goes idle, which under load is thousands of times a
    /// second.
    fn next_delivery_due_hint(&self) -> Option<Option<Millis>> {
        None
    }
    /// Counts by state, the oldest unfinished message, the next attempt.
    /// Counting finished deliveries reads the whole table: for operators.
    async fn queue_summary(&self) -> Result<QueueSummary>;
    /// Deliveries `(queued, sending)`, from indexes: cheap enough for every
    /// metrics scrape.
    async fn queue_depth(&self) -> Result<(u64, u64)>;
    /// Queue entries in `state` (all states when `None`), oldest first.
    async fn list_queue(&self, state: Option<DeliveryState>, limit: u32)
    -> Result<Vec<QueueEntry>>;
    /// Makes a message's unfinished deliveries due at `now`; how many.
    async fn retry_message(&self, message_id: &str, now: Millis) -> Result<u64>;
    /// Removes a message's unfinished deliveries from the queue; how many.
    async fn drop_message(&self, message_id: &str, now: Millis) -> Result<u64>;
    /// Recorded events, newest first.
    async fn list_events(&self, filter: &EventFilter) -> Result<Vec<Event>>;
    /// Records events that no delivery attempt made (feedback received
    /// later: DSNs, complaints), in one transaction.
    async fn record_events(&self, events: &[Event]) -> Result<()>;

    /// Records why a send was refused.
    async fn record_rejection(&self, scope: &Scope, rejection: &Rejection) -> Result<()>;
    /// The most recent rejections in a scope, newest first.
    async fn list_rejections(&self, scope: &Scope, limit: u32) -> Result<Vec<Rejection>>;
    /// The refusal of the API request `request_id`, and its scope.
    async fn find_rejection(&self, request_id: &str) -> Result<Option<(Scope, Rejection)>>;

    /// Creates a template unless one of that name exists or the scope holds
    /// `limit` already, atomically.
    async fn insert_template(
        &self,
        scope: &Scope,
        template: &Template,
        limit: u32,
    ) -> Result<Created>;
    async fn get_template(&self, scope: &Scope, name: &str) -> Result<Option<Template>>;
    /// Replaces a template's parts; `false` when it does not exist.
    async fn update_template(&self, scope: &Scope, template: &Template) -> Result<bool>;
    async fn delete_template(&self, scope: &Scope, name: &str) -> Result<bool>;
    /// Templates after position `after`, in creation order: `(position, template)`.
    async fn list_templates(
        &self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Template)>>;

    /// Creates a custom verification email template unless one of that name
    /// exists or the scope holds `limit` already, atomically.
    async fn insert_cv_template(
        &self,
        scope: &Scope,
        template: &CustomVerificationTemplate,
        limit: u32,
    ) -> Result<Created>;
    async fn get_cv_template(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<CustomVerificationTemplate>>;
    /// Replaces a custom verification template; `false` when it does not exist.
    async fn update_cv_template(
        &self,
        scope: &Scope,
        template: &CustomVerificationTemplate,
    ) -> Result<bool>;
    async fn delete_cv_template(&self, scope: &Scope, name: &str) -> Result<bool>;
    /// Custom verification templates after position `after`, in creation order.
    async fn list_cv_templates(
        &self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, CustomVerificationTemplate)>>;

    /// Creates a configuration set unless one of that name exists or the
    /// scope holds `limit` already, atomically.
    async fn insert_configuration_set(
        &self,
        scope: &Scope,
        set: &ConfigurationSet,
        limit: u32,
    ) -> Result<Created>;
    async fn get_configuration_set(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<ConfigurationSet>>;
    /// Replaces a configuration set; `false` when it does not exist.
    async fn update_configuration_set(&self, scope: &Scope, set: &ConfigurationSet)
    -> Result<bool>;
    async fn delete_configuration_set(&self, scope: &Scope, name: &str) -> Result<bool>;
    /// Configuration sets after position `after`, in creation order.
    async fn list_configuration_sets(
        &self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, ConfigurationSet)>>;

    // ------------------------------------------------------------ SNS

    /// Creates a topic unless one of that ARN exists (`Exists`) or the
    /// scope holds `limit`, atomically.
    async fn insert_topic(&self, scope: &Scope, topic: &Topic, limit: u32) -> Result<Created>;
    /// A topic by ARN, with its owner.
    async fn get_topic(&self, arn: &str) -> Result<Option<(Scope, Topic)>>;
    /// Replaces a topic's settings; `false` when it does not exist.
    async fn update_topic(&self, topic: &Topic) -> Result<bool>;
    /// Deletes a topic and its subscriptions; `false` when there was none.
    async fn delete_topic(&self, arn: &str) -> Result<bool>;
    /// Topics after position `after`, in creation order.
    async fn list_topics(&self, scope: &Scope, after: i64, limit: u32)
    -> Result<Vec<(i64, Topic)>>;
    /// Stores a subscription, and its confirmation message if any, in one
    /// transaction, unless its topic holds `limit` subscriptions
    /// (`LimitReached`) or no longer exists (`Exists`).
    async fn insert_subscription(
        &self,
        scope: &Scope,
        sub: &Subscription,
        limit: u32,
        confirmation: Option<&TopicMessage>,
        now: Millis,
    ) -> Result<Created>;
    async fn get_subscription(&self, arn: &str) -> Result<Option<(Scope, Subscription)>>;
    /// Replaces a subscription, storing `message` (a new confirmation, say)
    /// in the same transaction; `false` when it does not exist.
    async fn update_subscription(
        &self,
        sub: &Subscription,
        message: Option<&TopicMessage>,
        now: Millis,
    ) -> Result<bool>;
    /// Deletes a subscription, queueing `farewell` (an unsubscribe
    /// confirmation) in the same transaction; `false` when there was none.
    async fn delete_subscription(
        &self,
        arn: &str,
        farewell: Option<&TopicMessage>,
        now: Millis,
    ) -> Result<bool>;
    /// Subscriptions in a scope (of one topic, if given) after position
    /// `after`, in creation order.
    async fn list_subscriptions(
        &self,
        scope: &Scope,
        topic_arn: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Subscription)>>;
    /// Stores messages and queues their deliveries (each confirmed
    /// subscription of a message's topic, or its one recipient), and moves
    /// the named cursor, all in one transaction. How many deliveries.
    async fn publish_messages(
        &self,
        messages: &[TopicMessage],
        cursor: Option<(&str, i64)>,
        now: Millis,
    ) -> Result<u64>;
    /// Notified when topic deliveries are queued.
    fn topic_signal(&self) -> std::sync::Arc<tokio::sync::Notify>;
    /// Claims up to `limit` due topic deliveries until `lease_until`, with
    /// their messages and subscriptions; expired leases are claimable.
    async fn claim_topic_deliveries(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> Result<Vec<TopicDelivery>>;
    /// Records attempts' outcomes in one transaction.
    async fn finish_topic_deliveries(
        &self,
        outcomes: &[(i64, TopicDeliveryOutcome)],
        now: Millis,
    ) -> Result<()>;
    /// Puts every claimed topic delivery back, due now (at start).
    async fn requeue_topic_deliveries(&self, now: Millis) -> Result<u64>;
    async fn next_topic_delivery_due(&self) -> Result<Option<Millis>>;

    /// Where a reader of the events has got (`None`: never started).
    async fn cursor(&self, name: &str) -> Result<Option<i64>>;
    /// Events after position `seq`, in the order they were recorded.
    async fn events_after(&self, seq: i64, limit: u32) -> Result<Vec<(i64, Event)>>;

    /// Removes, up to `limit` of each kind, what is older than `before`
    /// and no longer needed: finished deliveries, messages none of whose
    /// deliveries is unfinished, events that event publishing has passed
    /// (its cursor), finished topic deliveries and the topic messages left
    /// without any, rejections, and quota-ledger minutes. Each kind in its
    /// own short transaction; call again until it removes nothing.
    async fn purge(&self, before: Millis, limit: u32) -> Result<Purged>;

    /// A deployment setting the server recorded, by name.
    async fn get_setting(&self, name: &str) -> Result<Option<String>>;
    /// Records a deployment setting, replacing its value.
    async fn put_setting(&self, name: &str, value: &str, now: Millis) -> Result<()>;

    /// Takes the named lease for this store's node until `until`, or
    /// renews it: whether the node holds it now. A lease held by another
    /// node is taken only once it has run out (before `now`), so background
    /// work that takes one before each step is done by one node at a time,
    /// and by another within a lease's length of its holder stopping.
    async fn take_lease(&self, name: &str, now: Millis, until: Millis) -> Result<bool>;
    /// Gives the named lease up, if this store's node holds it.
    async fn release_lease(&self, name: &str) -> Result<()>;

    /// Registers this store's node as running, for as long as the store is
    /// open: for a server, before it claims anything. On a backend several
    /// nodes share, a node name another running node holds is refused
    /// (after waiting out a registration a crashed instance of the node
    /// left), because two nodes of one name would put back each other's
    /// claims. A backend one server uses has nothing to register.
    async fn hold_node(&self) -> Result<()> {
        Ok(())
    }

    /// Finishes the writes handed to the store and closes its connections.
    async fn close(&self) {}

    /// A key Sesame made for itself, by name.
    async fn get_own_key(&self, name: &str) -> Result<Option<String>>;
    /// Stores a key unless one of that name exists; the stored one.
    async fn put_own_key(&self, name: &str, data: &str, now: Millis) -> Result<String>;

    // ------------------------------------------------------------ suppression

    /// Puts an address on the scope's suppression list, or updates its entry.
    async fn put_suppressed(&self, scope: &Scope, d: &SuppressedDestination) -> Result<()>;
    /// The entry of a (lower-cased) address.
    async fn get_suppressed(
        &self,
        scope: &Scope,
        address: &str,
    ) -> Result<Option<SuppressedDestination>>;
    /// `false` when the address was not on the list.
    async fn delete_suppressed(&self, scope: &Scope, address: &str) -> Result<bool>;
    /// Entries after position `after` matching `q`, in insertion order.
    async fn list_suppressed(
        &self,
        scope: &Scope,
        q: &SuppressionQuery,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, SuppressedDestination)>>;
    /// Which of `addresses` (lower-cased) are on the list for one of `reasons`.
    async fn suppressed_among(
        &self,
        scope: &Scope,
        addresses: &[String],
        reasons: &[Reason],
    ) -> Result<Vec<String>>;
}
