//! Storage: the [`Store`] trait the use cases talk to, and its backends.
//!
//! # Layout
//! - this file: the trait, its outcome types and [`StoreError`].
//! - [`sqlite`]: the embedded backend (SQLite in WAL mode, migrations in
//!   `migrations/sqlite/`).
//! - [`conformance`]: one behavioural suite every backend must pass.
//!
//! Backends never perform network I/O inside a transaction, and each
//! method is atomic on its own: a check-then-write (like the identity limit)
//! happens in one transaction here, never across calls.

pub mod conformance;
pub mod sqlite;

use async_trait::async_trait;
use sesame_model::{AccessKey, Identity, IdentityKind, Scope, VerificationStatus};

pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What inserting an identity did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insert {
    Inserted,
    /// An identity of that name exists in the scope; it is returned as stored.
    Exists(Box<Identity>),
    /// The scope already holds `limit` identities.
    LimitReached,
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
    /// The identities of these names that exist, in the order asked.
    async fn get_identities(&self, scope: &Scope, names: &[String]) -> Result<Vec<Identity>>;
    /// Replaces the stored identity if its version is still
    /// `identity.version`, bumping the version. `false` when it changed or
    /// vanished in between.
    async fn update_identity(&self, scope: &Scope, identity: &Identity) -> Result<bool>;
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
}
