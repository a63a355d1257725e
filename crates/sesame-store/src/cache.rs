//! A read cache for the lookups every send makes (the account, and the
//! identities that could cover its addresses), so a request need not read
//! SQLite for them.
//!
//! Invalidation: every write of accounts or identities, from any process
//! sharing the data directory (the server, or an operator command), replaces
//! the file `cache-epoch` with a fresh random value after its commit. Each
//! cached read first compares that file with the value last seen, and
//! empties the cache when it changed. A write is therefore visible to the
//! next request that starts after the writer returns.

use sesame_model::{Account, Identity, Scope};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

/// More entries than this and the cache starts over, bounding its memory.
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub(crate) struct Entries {
    accounts: HashMap<Scope, Option<Account>>,
    identities: HashMap<(Scope, String), Option<Identity>>,
}

impl Entries {
    fn clear(&mut self) {
        self.accounts.clear();
        self.identities.clear();
    }

    pub fn account(&self, scope: &Scope) -> Option<Option<Account>> {
        self.accounts.get(scope).cloned()
    }

    pub fn put_account(&mut self, scope: &Scope, a: Option<Account>) {
        if self.accounts.len() >= MAX_ENTRIES {
            self.accounts.clear();
        }
        self.accounts.insert(scope.clone(), a);
    }

    /// The cached identities among `names` (found ones only), and the names
    /// not cached at all.
    pub fn identities(&self, scope: &Scope, names: &[String]) -> (Vec<Identity>, Vec<String>) {
        let mut hits = vec![];
        let mut misses = vec![];
        for n in names {
            match self.identities.get(&(scope.clone(), n.clone())) {
                Some(Some(i)) => hits.push(i.clone()),
                Some(None) => {}
                None => misses.push(n.clone()),
            }
        }
        (hits, misses)
    }

    /// Records what a read of `names` found, absent names included.
    pub fn put_identities(&mut self, scope: &Scope, names: &[String], found: &[Identity]) {
        if self.identities.len() + names.len() >= MAX_ENTRIES {
            self.identities.clear();
        }
        for n in names {
            let hit = found.iter().find(|i| i.name.as_str() == n).cloned();
            self.identities.insert((scope.clone(), n.clone()), hit);
        }
    }
}

pub(crate) struct ReadCache {
    epoch_path: PathBuf,
    inner: Mutex<(Option<Vec<u8>>, Entries)>,
}

impl ReadCache {
    pub fn new(dir: &std::path::Path) -> Self {
        let epoch_path = dir.join("cache-epoch");
        let seen = std::fs::read(&epoch_path).ok();
        Self {
            epoch_path,
            inner: Mutex::new((seen, Entries::default())),
        }
    }

    /// The entries, emptied first if another writer has moved the epoch.
    /// `None` if the lock is poisoned (the caller then reads the store).
    pub fn entries(&self) -> Option<MutexGuard<'_, (Option<Vec<u8>>, Entries)>> {
        let now = std::fs::read(&self.epoch_path).ok();
        let mut g = self.inner.lock().ok()?;
        if g.0 != now {
            g.0 = now;
            g.1.clear();
        }
        Some(g)
    }

    /// Called after a committed write of accounts or identities: moves the
    /// epoch for every process and empties this one's cache.
    pub fn bump(&self) {
        let value = format!("{:032x}", rand_value());
        let tmp = self
            .epoch_path
            .with_extension(format!("tmp-{}", std::process::id()));
        let moved =
            std::fs::write(&tmp, &value).and_then(|_| std::fs::rename(&tmp, &self.epoch_path));
        if let Err(e) = moved {
            tracing::error!(error = %e, "cannot move the cache epoch; other processes may read stale settings");
        }
        if let Ok(mut g) = self.inner.lock() {
            g.0 = Some(value.into_bytes());
            g.1.clear();
        }
    }
}

/// A value that differs between bumps, in this process and across processes.
fn rand_value() -> u128 {
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as u128;
    t ^ (u128::from(std::process::id()) << 96) ^ (n << 64)
}
