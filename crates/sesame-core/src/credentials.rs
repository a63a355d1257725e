//! Access keys and how a request's key resolves to an account.
//!
//! A known key must verify with its secret. In `--dev` mode an unknown key
//! is accepted without a signature check (for `test`/`test`-style local
//! work); its account is the key ID when that is 12 digits, else the
//! configured dev account.

use crate::{Clock, internal, random};
use sesame_model::{AccessKey, AccountId, Error};
use sesame_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// What to do with a request signed by some access key ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Verify the signature with this secret; the request acts for `account`.
    Verify { secret: String, account: AccountId },
    /// `--dev`: accept without verifying; the request acts for `account`.
    AcceptUnverified { account: AccountId },
    /// Not a key Sesame knows (`InvalidClientTokenId`).
    Unknown,
}

pub struct Credentials {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// `Some(account)` in `--dev` mode: the fallback account for unknown keys.
    dev_account: Option<AccountId>,
    /// Keys found recently, so a request does not read the store for its
    /// key every time. Only found keys are kept, for [`KEY_CACHE_TTL`]: a
    /// key created by `sesame keys create` is seen at once, a changed one
    /// within the TTL.
    cache: RwLock<HashMap<String, (AccessKey, Instant)>>,
}

/// How long a found key is trusted without reading the store again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(60);

impl Credentials {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        dev_account: Option<AccountId>,
    ) -> Self {
        Self {
            store,
            clock,
            dev_account,
            cache: RwLock::new(HashMap::new()),
        }
    }

    async fn lookup(&self, id: &str) -> Result<Option<AccessKey>, Error> {
        if let Some((k, at)) = self.cache.read().ok().and_then(|c| c.get(id).cloned())
            && at.elapsed() < KEY_CACHE_TTL
        {
            return Ok(Some(k));
        }
        let found = self.store.get_access_key(id).await.map_err(internal)?;
        if let (Some(k), Ok(mut c)) = (&found, self.cache.write()) {
            if c.len() >= 10_000 {
                c.clear();
            }
            c.insert(id.to_owned(), (k.clone(), Instant::now()));
        }
        Ok(found)
    }

    pub async fn resolve(&self, access_key_id: &str) -> Result<Resolution, Error> {
        if let Some(k) = self.lookup(access_key_id).await? {
            return Ok(Resolution::Verify {
                secret: k.secret,
                account: k.account,
            });
        }
        Ok(match &self.dev_account {
            Some(fallback) => Resolution::AcceptUnverified {
                account: AccountId::parse(access_key_id).unwrap_or_else(|_| fallback.clone()),
            },
            None => Resolution::Unknown,
        })
    }

    /// Creates a new key for `account`: an AWS-shaped ID (`AKIA` + 16) and a
    /// 40-character secret.
    pub async fn create(&self, account: AccountId) -> Result<AccessKey, Error> {
        const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let key = AccessKey {
            id: format!("AKIA{}", random::string_from(UPPER, 16)),
            secret: random::string_from(SECRET, 40),
            account,
            created_at: self.clock.now_ms(),
        };
        self.store.put_access_key(&key).await.map_err(internal)?;
        Ok(key)
    }

    /// Stores a key given by the operator (the `SESAME_ROOT_*` variables).
    pub async fn seed(&self, id: &str, secret: &str, account: AccountId) -> Result<(), Error> {
        if id.is_empty() || secret.is_empty() {
            return Err(Error::invalid(
                "The seeded access key ID and secret must not be empty.",
            ));
        }
        let key = AccessKey {
            id: id.to_owned(),
            secret: secret.to_owned(),
            account,
            created_at: self.clock.now_ms(),
        };
        self.store.put_access_key(&key).await.map_err(internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SystemClock;
    use sesame_store::SqliteStore;

    async fn creds(dev: bool) -> (Credentials, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        let dev = dev.then(|| AccountId::parse("000000000000").unwrap());
        (Credentials::new(store, Arc::new(SystemClock), dev), dir)
    }

    #[tokio::test]
    async fn known_keys_verify_unknown_are_refused() {
        let (c, _d) = creds(false).await;
        let acct = AccountId::parse("123456789012").unwrap();
        let k = c.create(acct.clone()).await.unwrap();
        assert!(k.id.starts_with("AKIA") && k.id.len() == 20);
        assert_eq!(k.secret.len(), 40);
        assert_eq!(
            c.resolve(&k.id).await.unwrap(),
            Resolution::Verify {
                secret: k.secret,
                account: acct
            }
        );
        assert_eq!(c.resolve("test").await.unwrap(), Resolution::Unknown);
    }

    #[tokio::test]
    async fn dev_mode_accepts_any_key() {
        let (c, _d) = creds(true).await;
        assert_eq!(
            c.resolve("test").await.unwrap(),
            Resolution::AcceptUnverified {
                account: AccountId::parse("000000000000").unwrap()
            }
        );
        assert_eq!(
            c.resolve("111122223333").await.unwrap(),
            Resolution::AcceptUnverified {
                account: AccountId::parse("111122223333").unwrap()
            }
        );
        // A known key still has to verify in dev mode.
        c.seed(
            "root",
            "rootsecret",
            AccountId::parse("999999999999").unwrap(),
        )
        .await
        .unwrap();
        assert!(matches!(
            c.resolve("root").await.unwrap(),
            Resolution::Verify { .. }
        ));
    }
}
